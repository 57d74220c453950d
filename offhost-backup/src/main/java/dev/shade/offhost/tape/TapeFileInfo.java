package dev.shade.offhost.tape;

/**
 * One tape file of a cartridge, as the index of its records and filemarks shows it.
 *
 * @param fileNumber its number on the tape, from 0 (the label)
 * @param firstBlock the logical block number of its first record (for {@link TapeDrive#locate})
 * @param records how many records it has
 * @param bytes the bytes of those records
 * @param kind what it holds: for a shade tar, the middle of its first member's name
 *     ({@code "label"} for {@code shade-label.json}); {@code "empty"} for a file without
 *     records; {@code "data"} for anything else
 * @param closed true if a filemark ends it; false for a last file the writer did not end
 */
public record TapeFileInfo(int fileNumber, long firstBlock, long records, long bytes, String kind, boolean closed) {}
