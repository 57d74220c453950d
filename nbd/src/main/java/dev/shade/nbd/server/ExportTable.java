package dev.shade.nbd.server;

import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotNotFoundException;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The exports of a set of open volumes, looked up by name when a client asks, so snapshots
 * taken or deleted while the server runs appear and disappear.
 */
final class ExportTable {
  private final List<Volume> volumes;

  ExportTable(List<Volume> volumes) {
    this.volumes = List.copyOf(volumes);
  }

  List<Volume> volumes() {
    return volumes;
  }

  /**
   * The export named {@code name}, or null. The empty name is the default export: the origin
   * of the only volume, when there is exactly one.
   */
  Export find(String name, boolean writableAllowed) throws IOException {
    if (name.isEmpty()) {
      return volumes.size() == 1 ? Export.origin(volumes.get(0), !writableAllowed) : null;
    }
    int at = name.indexOf('@');
    String volumeName = at < 0 ? name : name.substring(0, at);
    for (Volume v : volumes) {
      if (!v.name().equals(volumeName)) {
        continue;
      }
      if (at < 0) {
        return Export.origin(v, !writableAllowed);
      }
      try {
        return Export.snapshot(v, v.snapshot(name.substring(at + 1)));
      } catch (SnapshotNotFoundException e) {
        return null;
      }
    }
    return null;
  }

  /** Every export: each origin, then its snapshots oldest first. */
  List<Export> list(boolean writableAllowed) throws IOException {
    List<Export> out = new ArrayList<>();
    for (Volume v : volumes) {
      out.add(Export.origin(v, !writableAllowed));
      for (SnapshotInfo s : v.snapshots()) {
        out.add(Export.snapshot(v, s));
      }
    }
    return out;
  }
}
