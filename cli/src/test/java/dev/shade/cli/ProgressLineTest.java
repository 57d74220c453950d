package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class ProgressLineTest {
  @Test
  void update_onTerminalRedrawsOneLineAndCloseBlanksIt() throws InterruptedException {
    StringWriter err = new StringWriter();
    try (ProgressLine p = new ProgressLine(new PrintWriter(err), "import", true)) {
      p.update(1 << 20, 4 << 20); // too soon after the start: not shown
      assertEquals("", err.toString());
      Thread.sleep(120);
      p.update(2 << 20, 4 << 20);
      assertTrue(err.toString().startsWith("\rimport  50%  2 MiB of 4 MiB  "), err.toString());
      assertTrue(err.toString().endsWith("/s"), err.toString());
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
}
