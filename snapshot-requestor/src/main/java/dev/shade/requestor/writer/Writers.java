package dev.shade.requestor.writer;

/**
 * Makes writers from their specs ({@code fs:MOUNTPOINT}, {@code postgres:CONNINFO},
 * {@code sqlite:DBFILE}, {@code exec:DIR}).
 */
public final class Writers {
  private Writers() {}

  /** The writer {@code spec} names; IllegalArgumentException naming the spec when there is none. */
  public static Writer parse(String spec) {
    throw new IllegalArgumentException("unknown writer: " + spec);
  }
}
