package dev.shade.bench;

import java.util.List;

/** One NBD server under test in {@code shade bench nbd}: its name, how to reach it, and how it was set up. */
final class NbdTarget {
  /** Key of the target in the results, e.g. {@code qemu_nbd_raw}. */
  final String name;
  /** What is served and by what, in a few words, for the environment section. */
  final String description;
  /** True when only the read jobs run (the export refuses writes). */
  final boolean readOnly;
  /** How the server caches and flushes, for the environment section; final once the server is up. */
  String cache;
  /** The server's command line, or a description of the in-process server; set when started. */
  List<String> server = List.of();
  /** The URI fio connects to; set when the server is up. */
  String uri;
  /** Why the target is not measured, or null while it is. */
  String skipped;

  NbdTarget(String name, String description, boolean readOnly, String cache) {
    this.name = name;
    this.description = description;
    this.readOnly = readOnly;
    this.cache = cache;
  }

  boolean measured() {
    return skipped == null;
  }

  /** Marks the target as not measured, keeping the first reason given. */
  void skip(String reason) {
    if (skipped == null) {
      skipped = reason;
    }
  }

  @Override
  public String toString() {
    return name + (uri == null ? "" : " at " + uri);
  }
}
