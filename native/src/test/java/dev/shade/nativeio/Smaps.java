package dev.shade.nativeio;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the kernel says about this process's mappings of one file, from {@code /proc/self/smaps}:
 * resident and dirty pages and {@code madvise} flags, which lets tests observe msync and madvise.
 */
final class Smaps {
  /*
   * smaps lists one block per VMA: a header "start-end perms offset dev inode pathname" followed
   * by "Key: N kB" lines and a "VmFlags:" line. A chunk of a MappedFile is at least one VMA;
   * madvise over part of one splits it, and adjacent ones may merge, so callers only ever use
   * sums over all the VMAs of the file.
   */

  /** One VMA of the file. */
  record Vma(long bytes, Map<String, Long> kilobytes, Set<String> flags) {}

  /** The VMAs of {@code file}, as mapped by this process now. */
  private final List<Vma> vmas;

  private Smaps(List<Vma> vmas) {
    this.vmas = vmas;
  }

  /** Reads the current VMAs of {@code file} from {@code /proc/self/smaps}. */
  static Smaps of(Path file) throws IOException {
    String want = file.toRealPath().toString();
    List<Vma> vmas = new ArrayList<>();
    long bytes = -1;
    Map<String, Long> kb = null;
    for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
      if (isHeader(line)) {
        String[] f = line.split("\\s+", 6);
        boolean ours = f.length == 6 && f[5].equals(want);
        if (ours) {
          String[] range = f[0].split("-");
          bytes = Long.parseUnsignedLong(range[1], 16) - Long.parseUnsignedLong(range[0], 16);
          kb = new HashMap<>();
        } else {
          kb = null;
        }
      } else if (kb != null && line.startsWith("VmFlags:")) {
        vmas.add(new Vma(bytes, Map.copyOf(kb),
            Set.of(line.substring("VmFlags:".length()).trim().split("\\s+"))));
        kb = null;
      } else if (kb != null && line.endsWith(" kB")) {
        int colon = line.indexOf(':');
        String value = line.substring(colon + 1, line.length() - 3).trim();
        kb.put(line.substring(0, colon), Long.parseLong(value));
      }
    }
    return new Smaps(List.copyOf(vmas));
  }

  private static boolean isHeader(String line) {
    int dash = line.indexOf('-');
    int space = line.indexOf(' ');
    return dash > 0 && space > dash && line.substring(0, dash).chars().allMatch(
        c -> Character.digit(c, 16) >= 0);
  }

  /** Number of VMAs of the file. */
  int count() {
    return vmas.size();
  }

  /** Sum of the {@code key} lines (in kB), e.g. {@code "Rss"}, over all VMAs of the file. */
  long kilobytes(String key) {
    return vmas.stream().mapToLong(v -> v.kilobytes().getOrDefault(key, 0L)).sum();
  }

  /** Dirty pages of the file in this process, in kB: shared and private dirty together. */
  long dirtyKilobytes() {
    // A page of a MAP_SHARED mapping that only this process maps counts as "Private_Dirty".
    return kilobytes("Shared_Dirty") + kilobytes("Private_Dirty");
  }

  /** Bytes of address space in VMAs of the file that carry {@code flag} (e.g. "rr", "sr"). */
  long bytesWithFlag(String flag) {
    return vmas.stream().filter(v -> v.flags().contains(flag)).mapToLong(Vma::bytes).sum();
  }

  @Override
  public String toString() {
    return vmas.toString();
  }
}
