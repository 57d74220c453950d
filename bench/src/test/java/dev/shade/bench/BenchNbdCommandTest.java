package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The command line of {@code shade bench nbd}; the benchmark itself is NbdBenchTest's. */
class BenchNbdCommandTest {
  @AfterEach
  void restore() {
    System.clearProperty("shade.bench.nbd.targets");
  }

  @Test
  void benchNbd_zeroSeconds_isUsageError() {
    BenchCli.Result r = BenchCli.run("bench", "nbd", "--seconds", "0");
    assertEquals(2, r.code(), r::toString);
    assertEquals(1, r.errLines().size(), r::toString);
    assertTrue(r.err().contains("--seconds must be from 1 to 3600: 0"), r::toString);
    assertEquals("", r.out());
  }

  @Test
  void benchNbd_unknownTarget_isUsageErrorNamingTheChoices() {
    System.setProperty("shade.bench.nbd.targets", "shade_origin,qemu_nbd_vmdk");
    BenchCli.Result r = BenchCli.run("bench", "nbd");
    assertEquals(2, r.code(), r::toString);
    assertEquals(1, r.errLines().size(), r::toString);
    assertTrue(r.err().contains("unknown target 'qemu_nbd_vmdk'") && r.err().contains("nbdkit_file"), r::toString);
  }
}
