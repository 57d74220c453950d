package dev.shade.bench;

import dev.shade.cli.Shade;

/**
 * Entry point of the bench jar: the {@code shade} command line with the real {@code shade bench}
 * in place of the product jar's stub, so {@code shade-bench.jar bench cow} prints, fails and exits
 * exactly as the commands of {@code shade.jar} do.
 */
public final class ShadeBench {
  private ShadeBench() {}

  public static void main(String[] args) {
    System.exit(Shade.commandLine(new BenchCommand()).execute(args));
  }
}
