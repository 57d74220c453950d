package dev.shade.requestor.writer;

import java.nio.file.Path;

/** Writers from their specs. */
public final class Writers {
  private Writers() {}

  /** The writer {@code spec} names, e.g. {@code exec:/etc/shade/hooks}. */
  public static Writer parse(String spec) {
    int colon = spec.indexOf(':');
    if (colon <= 0 || colon == spec.length() - 1) {
      throw new IllegalArgumentException("bad writer spec '" + spec + "': expected KIND:ARGUMENT, e.g. exec:/etc/shade/hooks");
    }
    String kind = spec.substring(0, colon);
    String arg = spec.substring(colon + 1);
    switch (kind) {
      case "exec":
        return ExecWriter.of(Path.of(arg));
      default:
        throw new IllegalArgumentException("unknown writer kind '" + kind + "' in '" + spec + "': known kinds are exec");
    }
  }
}
