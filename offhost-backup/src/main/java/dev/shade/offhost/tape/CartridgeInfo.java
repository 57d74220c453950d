package dev.shade.offhost.tape;

import java.util.List;

/**
 * A cartridge of a virtual library and what is on it.
 *
 * @param slot its slot, from 1
 * @param label its label, null when blank (no shade label in file 0)
 * @param pool its pool, null when blank
 * @param sequence its sequence number in the pool, 0 when blank
 * @param loadedIn the drive it is in, -1 when in its slot
 * @param capacity bytes of records it holds
 * @param usedBytes bytes of records on it
 * @param earlyWarning true if the data reaches into the early-warning zone
 * @param files its tape files, in order
 */
public record CartridgeInfo(int slot, String label, String pool, int sequence, int loadedIn, long capacity,
    long usedBytes, boolean earlyWarning, List<TapeFileInfo> files) {
  public CartridgeInfo {
    files = List.copyOf(files);
  }

  /** True if the cartridge has no shade label. */
  public boolean blank() {
    return label == null;
  }
}
