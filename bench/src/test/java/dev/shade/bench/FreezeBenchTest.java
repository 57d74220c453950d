package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
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

  @Test
  void settings_badVia_orSqlitePlaceholderWithoutSqlite_areRefused() {
    IllegalArgumentException via = assertThrows(IllegalArgumentException.class,
        () -> new FreezeBench.Settings(Path.of("/var/tmp"), 1L << 30, 10, 20, 4, 10, List.of(), false, false,
            List.of("cli", "socket")));
    assertTrue(via.getMessage().contains("socket"), via::getMessage);
    IllegalArgumentException sqlite = assertThrows(IllegalArgumentException.class,
        () -> new FreezeBench.Settings(Path.of("/var/tmp"), 1L << 30, 10, 20, 4, 10, List.of("sqlite:{sqlite}"), false,
            false, List.of("cli")));
    assertTrue(sqlite.getMessage().contains("--sqlite"), sqlite::getMessage);
    FreezeBench.Settings both = new FreezeBench.Settings(Path.of("/var/tmp"), 1L << 30, 10, 20, 4, 10,
        List.of("sqlite:{sqlite}"), false, true, List.of("control", "cli", "control"));
    assertEquals(List.of("control", "cli"), both.via());
  }

  @Test
  void snapshotPhase_splitsTheWindow_intoCommitWritersAndTheRest() throws Exception {
    FreezeBench.SnapshotPhase p = new FreezeBench.SnapshotPhase();
    p.add(new ObjectMapper().readTree("{\"freezeMs\": 100.0, \"commitMs\": 10.0, \"writers\": ["
        + "{\"writer\": \"sqlite:/db\", \"phases\": {\"freezeMs\": 5.0, \"thawMs\": 1.0}},"
        + "{\"writer\": \"fs:/data\", \"phases\": {\"freezeMs\": 70.0, \"thawMs\": 4.0}}]}"));
    p.add(new ObjectMapper().readTree("{\"setId\": null}")); // crash-consistent: nothing froze
    assertEquals(List.of(100.0), p.freezeMs);
    assertEquals(List.of(10.0), p.commitMs);
    assertEquals(List.of(80.0), p.writerMs);
    assertEquals(List.of(10.0), p.overheadMs);
  }
}
