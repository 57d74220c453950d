package dev.shade.nbd.client;

/** One export of an {@code NBD_OPT_LIST} answer: its name and description ("" when none). */
public record ListedExport(String name, String description) {}
