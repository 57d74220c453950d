package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class FreezeBenchTest {
  @Test
  void requireMachine_withoutTools_namesEachAndItsPackage() {
    IOException e = assertThrows(IOException.class, () -> FreezeBench.requireMachine(p -> Optional.empty()));
    for (String s : List.of("nbdfuse (Debian: apt-get install libnbd-bin)", "fsfreeze (Debian: apt-get install util-linux)",
        "mkfs.ext4 (Debian: apt-get install e2fsprogs)", "live PostgreSQL")) {
      assertTrue(e.getMessage().contains(s), () -> s + " in: " + e.getMessage());
    }
  }

  @Test
  void summary_ofFewRounds_isNearestRank() {
    Map<String, Object> m = FreezeBench.summary(List.of(5.0, 1.0, 3.0, 2.0, 4.0));
    assertEquals(3.0, m.get("p50"));
    assertEquals(5.0, m.get("p99"));
    assertEquals(1.0, m.get("min"));
    assertEquals(5.0, m.get("max"));
    assertEquals(5, m.get("count"));
    assertEquals(null, FreezeBench.summary(List.of()).get("p50"));
  }

  @Test
  void settings_outOfRange_areRefusedWithTheValue() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new FreezeBench.Settings(Path.of("/var/tmp"), 1L << 20, 10, 20, 4, 10, List.of(), false));
    assertTrue(e.getMessage().contains("1048576"), e::getMessage);
  }
}
