package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProgressLineTest {
  private static final long SECOND = 1_000_000_000L;
  private static final int MiB = 1 << 20;

  @Test
  void update_onTerminalRedrawsOneLineAndCloseBlanksIt() throws InterruptedException {
    StringWriter err = new StringWriter();
    try (ProgressLine p = new ProgressLine(new PrintWriter(err), "import", true)) {
      p.update(1 << 20, 4 << 20); // too soon after the start: not shown
      assertEquals("", err.toString());
      Thread.sleep(120);
      p.update(2 << 20, 4 << 20);
      assertTrue(err.toString().startsWith("\rimport [############------------]  50%  2 MiB of 4 MiB  "),
          err.toString());
      assertTrue(err.toString().contains("/s  ETA "), err.toString());
    }
    String drawn = err.toString();
    assertTrue(drawn.endsWith("\r"), "the line is blanked on close: " + drawn);
    assertTrue(!drawn.contains("\n"), "never a new line on a terminal: " + drawn);
  }

  @Test
  void update_withoutTerminalPrintsNothingForShortWork() throws InterruptedException {
    StringWriter err = new StringWriter();
    try (ProgressLine p = new ProgressLine(new PrintWriter(err), "export", false)) {
      Thread.sleep(120);
      p.update(4 << 20, 4 << 20);
    }
    assertEquals("", err.toString(), "plain lines come at most every few seconds, none for quick work");
  }

  @Test
  void update_withoutTerminal_printsAPlainLineEveryFiveSeconds_withRateAndTimeLeft() {
    StringWriter err = new StringWriter();
    long[] now = {100 * SECOND};
    try (ProgressLine p = new ProgressLine(new PrintWriter(err), "verify", false, () -> now[0])) {
      for (int s = 1; s <= 12; s++) {
        now[0] += SECOND;
        p.update(s * 4L * MiB, 64L * MiB); // 4 MiB/s of 64 MiB
      }
    }
    List<String> lines = err.toString().lines().toList();
    assertEquals(List.of(
        "verify: 31%, 20 MiB of 64 MiB, 4 MiB/s, 11 s left (5.0 s so far)",
        "verify: 62%, 40 MiB of 64 MiB, 4 MiB/s, 6 s left (10.0 s so far)"), lines);
  }

  @Test
  void update_onTerminal_drawsABarWithBytesRateAndEta_andBlanksWhatALongerLineLeft() {
    StringWriter err = new StringWriter();
    long[] now = {0};
    try (ProgressLine p = new ProgressLine(new PrintWriter(err), "restore", true, () -> now[0])) {
      now[0] += 2 * SECOND;
      p.update(6L * MiB, 600L * MiB); // 3 MiB/s, 198 s left
      String first = err.toString();
      assertEquals("\rrestore [------------------------]   1%  6 MiB of 600 MiB  3 MiB/s  ETA 3 min 18 s", first);
      now[0] += 98 * SECOND;
      p.update(300L * MiB, 600L * MiB);
      String second = err.toString().substring(first.length());
      assertEquals("\rrestore [############------------]  50%  300 MiB of 600 MiB  3 MiB/s  ETA 1 min 40 s", second);
      now[0] += SECOND / 20; // too soon for a redraw
      p.update(301L * MiB, 600L * MiB);
      assertEquals(first.length() + second.length(), err.toString().length());
      now[0] += SECOND;
      p.update(0, 0); // the total unknown: neither bar nor estimate, the rest of the longer line blanked
      String third = err.toString().substring(first.length() + second.length());
      assertTrue(third.startsWith("\rrestore 0 B  0 B/s   "), third);
      assertEquals(second.length(), third.length(), "blanks cover the longer line before");
    }
  }

  @Test
  void eta_readsAsSecondsMinutesOrHours() {
    assertEquals("0 s", ProgressLine.eta(0.2));
    assertEquals("59 s", ProgressLine.eta(59.4));
    assertEquals("1 min 00 s", ProgressLine.eta(60));
    assertEquals("2 h 05 min", ProgressLine.eta(2 * 3600 + 5 * 60 + 30));
  }
}
