package dev.shade.cli;

import java.io.Console;

/** The interactive terminal of the process, if any: where confirmations are asked. */
interface Terminal {
  /** True if a person can be asked and a progress line redrawn in place. */
  boolean interactive();

  /** Shows {@code prompt} and reads one line, or returns null when there is no answer (EOF). */
  String readLine(String prompt);

  /** The terminal of this process, looked up on each call ({@link System#console()}). */
  static Terminal system() {
    return new Terminal() {
      @Override
      public boolean interactive() {
        return System.console() != null;
      }

      @Override
      public String readLine(String prompt) {
        Console console = System.console();
        return console == null ? null : console.readLine("%s", prompt);
      }
    };
  }
}
