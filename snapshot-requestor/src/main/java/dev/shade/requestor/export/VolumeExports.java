package dev.shade.requestor.export;

import dev.shade.nbd.server.ExportCatalog;
import dev.shade.nbd.server.NbdExport;
import dev.shade.nbd.server.NbdServer;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

/**
 * The NBD exports of a changing set of open volumes: each origin as {@code NAME}, each snapshot
 * as {@code NAME@SNAPSHOT} or {@code NAME@id=ID}, for an {@link NbdServer}.
 *
 * <p>Names: {@code NAME} is the volume's name (its directory's name) or its uuid; {@code SNAPSHOT}
 * a snapshot's name, or {@code id=} and its stable id (snapshot names never contain {@code =}, so
 * the two cannot clash). The empty name is the origin of the only volume when exactly one is
 * attached. Exports are listed under their canonical names, {@code NAME} and
 * {@code NAME@SNAPSHOT} with the volume's name, and described by one line of JSON:
 * {@code {"volume":NAME,"volumeUuid":UUID,"snapshot":NAME|null,"snapshotId":ID|null,
 * "created":ISO-8601|null,"size":N,"blockSize":N}}. Origins are read-write for peers that may write,
 * read-only otherwise; snapshots are always read-only. Snapshots taken or deleted while serving
 * appear and disappear at once: every lookup asks the volume.
 *
 * <p>Meta contexts: {@code base:allocation} and {@code shade:changed:FROM}, FROM a snapshot's
 * name or {@code id=ID}, flag 1 on the blocks that differ between FROM and the export.
 *
 * <p>Thread-safe: volumes may be attached and detached while a server consults the catalog.
 * Detaching takes a volume out of the catalog only; to end its clients' sessions before closing
 * it, follow with {@code server.disconnect(exports.exportsOf(volume), timeout)}.
 */
public final class VolumeExports implements ExportCatalog {
  /** The attached volumes, in the order they were attached; replaced on change, so lookups need no lock. */
  private final CopyOnWriteArrayList<Volume> volumes = new CopyOnWriteArrayList<>();

  /** An empty catalog. */
  public VolumeExports() {}

  /** A catalog of {@code volumes}, attached in order. */
  public VolumeExports(Collection<Volume> volumes) {
    for (Volume v : volumes) {
      attach(v);
    }
  }

  /**
   * Adds {@code volume}'s exports. Its name must differ from those of every volume attached
   * (export names must be unique). Two volumes with one uuid (a copied directory) may both be
   * attached, but then neither is found by its uuid.
   *
   * @throws IllegalArgumentException when another attached volume has the same name
   */
  public synchronized void attach(Volume volume) {
    for (Volume v : volumes) {
      if (v == volume) {
        throw new IllegalArgumentException("volume " + volume.name() + " is already attached");
      }
      if (v.name().equals(volume.name())) {
        throw new IllegalArgumentException("two volumes are named " + volume.name() + "; export names must be unique");
      }
    }
    volumes.add(volume);
  }

  /**
   * Removes {@code volume}'s exports from the catalog: no new client finds them. Clients already
   * attached stay so until {@link NbdServer#disconnect} with {@link #exportsOf}. Returns false
   * when it was not attached.
   */
  public synchronized boolean detach(Volume volume) {
    return volumes.remove(volume);
  }

  /** The attached volumes, in the order they were attached. */
  public List<Volume> volumes() {
    return List.copyOf(volumes);
  }

  /** Matches the exports of {@code volume} (its origin and its snapshots) that this catalog handed out. */
  public static Predicate<NbdExport> exportsOf(Volume volume) {
    return e -> e instanceof VolumeExport && ((VolumeExport) e).volume() == volume;
  }

  /** The canonical export name of {@code volume}'s origin. */
  public static String originName(Volume volume) {
    return volume.name();
  }

  /** The canonical export name of snapshot {@code s} of {@code volume}. */
  public static String snapshotName(Volume volume, SnapshotInfo s) {
    return volume.name() + "@" + s.name();
  }

  /** The JSON description of {@code volume}'s origin ({@code s} null) or of its snapshot {@code s}. */
  public static String description(Volume volume, SnapshotInfo s) {
    return VolumeExport.describe(volume, s);
  }

  @Override
  public NbdExport find(String name, boolean writable) throws IOException {
    List<Volume> vs = volumes;
    if (name.isEmpty()) {
      return vs.size() == 1 ? VolumeExport.origin(vs.get(0), !writable) : null;
    }
    Volume whole = volume(vs, name); // a volume's name may contain '@'; a snapshot's never does
    if (whole != null) {
      return VolumeExport.origin(whole, !writable);
    }
    int at = name.lastIndexOf('@');
    if (at < 0) {
      return null;
    }
    Volume v = volume(vs, name.substring(0, at));
    SnapshotInfo s = v == null ? null : snapshot(v, name.substring(at + 1));
    if (s == null) {
      return null;
    }
    try {
      return VolumeExport.snapshot(v, s);
    } catch (dev.shade.provider.SnapshotNotFoundException e) {
      return null; // deleted since
    }
  }

  @Override
  public List<Entry> list(boolean writable) {
    List<Entry> out = new ArrayList<>();
    for (Volume v : volumes) {
      out.add(new Entry(originName(v), description(v, null)));
      for (SnapshotInfo s : v.snapshots()) {
        out.add(new Entry(snapshotName(v, s), description(v, s)));
      }
    }
    return out;
  }

  /** The volume named {@code key}, or else the only one whose uuid it is; null if none. */
  private static Volume volume(List<Volume> vs, String key) {
    for (Volume v : vs) {
      if (v.name().equals(key)) {
        return v;
      }
    }
    Volume found = null;
    for (Volume v : vs) {
      if (v.uuid().equals(key)) {
        if (found != null) {
          return null; // two copies of one volume: the uuid names neither
        }
        found = v;
      }
    }
    return found;
  }

  /** The snapshot of {@code v} named {@code key}, or with the id of {@code id=ID}; null if none. */
  static SnapshotInfo snapshot(Volume v, String key) {
    if (key.startsWith(VolumeExport.ID_PREFIX)) {
      String digits = key.substring(VolumeExport.ID_PREFIX.length());
      if (digits.isEmpty() || digits.length() > 19 || !digits.chars().allMatch(c -> c >= '0' && c <= '9')) {
        return null;
      }
      long id;
      try {
        id = Long.parseLong(digits);
      } catch (NumberFormatException e) {
        return null;
      }
      for (SnapshotInfo s : v.snapshots()) {
        if (s.id() == id) {
          return s;
        }
      }
      return null;
    }
    for (SnapshotInfo s : v.snapshots()) {
      if (s.name().equals(key)) {
        return s;
      }
    }
    return null;
  }

  @Override
  public String toString() {
    return "exports of " + volumes.size() + " volume" + (volumes.size() == 1 ? "" : "s");
  }
}
