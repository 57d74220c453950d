package dev.shade.offhost.tape;

/**
 * Where a drive is and what it knows of its cartridge.
 *
 * @param fileNumber the current tape file, from 0; -1 when the drive cannot tell (after a locate)
 * @param blockNumber the record within that file, from 0; -1 when the drive cannot tell (after a
 *     backward space on st)
 * @param beginningOfTape at the very start of the tape
 * @param endOfData at the end of recorded data
 * @param earlyWarning past the early-warning mark, or the early warning was reported
 * @param endOfMedium the trailer allowance is used up: record writes fail
 * @param writeProtected writes fail
 */
public record TapeStatus(int fileNumber, long blockNumber, boolean beginningOfTape, boolean endOfData,
    boolean earlyWarning, boolean endOfMedium, boolean writeProtected) {}
