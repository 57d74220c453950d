package dev.shade.requestor.ops;

import dev.shade.nativeio.AtomicFile;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.provider.BlockSource;
import dev.shade.provider.Progress;
import dev.shade.provider.Range;
import dev.shade.provider.RevertPlan;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.Volume;
import dev.shade.requestor.control.ControlException;
import dev.shade.requestor.lease.GuardPool;
import dev.shade.requestor.writer.Writers;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The volume and snapshot commands, carried out on open volumes: the one implementation behind
 * both a {@code shade} command that opens a volume itself and the agent that holds it, so both
 * give the same answers and the same errors.
 *
 * <p>Each command takes JSON arguments and returns a JSON-ready document (maps, lists, numbers,
 * strings), which the command line prints as its {@code --json} output and renders as text.
 * Volumes are named by reference (a directory; the agent also takes a name or uuid), which a
 * {@link Volumes} resolves. Thread-safe as far as {@link Volume} is.
 */
public final class VolumeCommands {
  /** Finds the open volume a command names. */
  public interface Volumes {
    /** The open volume {@code ref} names; fails with a message naming {@code ref} when there is none. */
    Volume get(String ref) throws IOException;

    /**
     * Called before the origin of {@code v} is rolled back; throws to refuse (e.g. while a
     * client has it mounted read-write).
     */
    default void beforeRevert(Volume v) throws IOException {}

    /** The NBD clients of the volumes, for a rollback: none where nothing serves them. */
    default Rollback.Clients clients() {
      return Rollback.Clients.NONE;
    }

    /** Makes the writers a rollback stops and starts again. */
    default Rollback.WriterFactory writers() {
      return Writers::parse;
    }

    /** Where consistent snapshots get their freeze lease's guard: a fresh one each, unless the caller keeps them. */
    default GuardPool guards() {
      return NO_POOL;
    }
  }

  private static final GuardPool NO_POOL = GuardPool.none();

  /** Command names, as sent over the control socket. */
  public static final String VOLUME_INFO = "volume-info";
  public static final String VOLUME_IMPORT = "volume-import";
  public static final String VOLUME_EXPORT = "volume-export";
  public static final String VOLUME_REVERT_PLAN = "volume-revert-plan";
  public static final String VOLUME_REVERT = "volume-revert";
  public static final String SNAPSHOT_CREATE = "snapshot-create";
  public static final String SNAPSHOT_LIST = "snapshot-list";
  public static final String SNAPSHOT_DELETE = "snapshot-delete";
  public static final String SNAPSHOT_EXPORT = "snapshot-export";
  public static final String SNAPSHOT_DIFF = "snapshot-diff";
  public static final String SNAPSHOT_BACKUP_COMPLETE = "snapshot-backup-complete";
  /** One snapshot: args volume, snapshot (a name or id=N). */
  public static final String SNAPSHOT_SHOW = "snapshot-show";
  /** Replaces a snapshot's attributes: args volume, snapshot, attributes (an object of strings). */
  public static final String SNAPSHOT_SET_ATTRIBUTES = "snapshot-set-attributes";

  /** Every command this class carries out. */
  public static final List<String> COMMANDS = List.of(VOLUME_INFO, VOLUME_IMPORT, VOLUME_EXPORT, VOLUME_REVERT_PLAN,
      VOLUME_REVERT, Rollback.VOLUME_ROLLBACK, SNAPSHOT_CREATE, SNAPSHOT_LIST, SNAPSHOT_DELETE, SNAPSHOT_EXPORT, SNAPSHOT_DIFF,
      SNAPSHOT_SHOW, SNAPSHOT_SET_ATTRIBUTES, SNAPSHOT_BACKUP_COMPLETE);

  private VolumeCommands() {}

  /** The volume references {@code command}'s arguments name, in order: what must be opened to run it. */
  public static List<String> volumeRefs(String command, JsonNode args) throws ControlException {
    if (command.equals(SNAPSHOT_CREATE)) {
      JsonNode list = args.get("volumes");
      if (list == null || !list.isArray() || list.isEmpty()) {
        throw invalid(command + " needs \"volumes\": a non-empty list of volumes");
      }
      List<String> out = new ArrayList<>();
      for (JsonNode v : list) {
        if (!v.isTextual()) {
          throw invalid(command + ": every member of \"volumes\" must be a string: " + v);
        }
        out.add(v.asText());
      }
      return out;
    }
    return List.of(text(args, "volume", command));
  }

  /**
   * Runs {@code command}. {@code progress} hears how long work (import, export, revert) advances.
   *
   * @throws ControlException for unknown commands and bad arguments
   * @throws IOException when the command fails (missing snapshot, I/O error, ...)
   */
  public static Object execute(String command, JsonNode args, Volumes volumes, Progress progress) throws IOException {
    switch (command) {
      case VOLUME_INFO:
        return info(volumes.get(text(args, "volume", command)));
      case VOLUME_IMPORT:
        return importFile(volumes.get(text(args, "volume", command)), Path.of(text(args, "file", command)),
            longArg(args, "offset", 0, command), progress);
      case VOLUME_EXPORT: {
        Volume v = volumes.get(text(args, "volume", command));
        return export(v, v, Path.of(text(args, "file", command)), args.path("force").asBoolean(false), null, progress);
      }
      case VOLUME_REVERT_PLAN: {
        Volume v = volumes.get(text(args, "volume", command));
        return plan(v, v.planRevert(ref(args, "snapshot", command)));
      }
      case VOLUME_REVERT:
        return revert(volumes, volumes.get(text(args, "volume", command)), ref(args, "snapshot", command), progress);
      case Rollback.VOLUME_ROLLBACK:
        return Rollback.run(volumes.get(text(args, "volume", command)), Rollback.Options.of(args), volumes.writers(),
            volumes.clients(), progress, Clock.systemUTC());
      case SNAPSHOT_CREATE:
        return create(volumes, args);
      case SNAPSHOT_LIST: {
        Volume v = volumes.get(text(args, "volume", command));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("volume", v.name());
        m.put("volumeUuid", v.uuid());
        m.put("snapshots", list(v));
        return m;
      }
      case SNAPSHOT_DELETE:
        return delete(volumes.get(text(args, "volume", command)), ref(args, "snapshot", command));
      case SNAPSHOT_EXPORT: {
        Volume v = volumes.get(text(args, "volume", command));
        SnapshotInfo snap = v.snapshot(ref(args, "snapshot", command));
        try (BlockSource s = v.openSnapshot(SnapshotRef.ofId(snap.id()))) {
          return export(v, s, Path.of(text(args, "file", command)), args.path("force").asBoolean(false), snap, progress);
        }
      }
      case SNAPSHOT_SHOW: {
        Volume v = volumes.get(text(args, "volume", command));
        return show(v, v.snapshot(ref(args, "snapshot", command)));
      }
      case SNAPSHOT_SET_ATTRIBUTES: {
        Volume v = volumes.get(text(args, "volume", command));
        SnapshotRef ref = ref(args, "snapshot", command);
        JsonNode attrs = args.get("attributes");
        if (attrs == null || attrs.isNull()) {
          throw invalid(command + " needs \"attributes\": an object of string values");
        }
        return show(v, v.setSnapshotAttributes(ref, attributes(attrs, command)));
      }
      case SNAPSHOT_DIFF:
        return diff(volumes.get(text(args, "volume", command)), ref(args, "from", command),
            args.hasNonNull("to") ? ref(args, "to", command) : null);
      case SNAPSHOT_BACKUP_COMPLETE:
        return BackupComplete.run(volumes.get(text(args, "volume", command)), ref(args, "snapshot", command));
      default:
        throw new ControlException(ControlException.COMMAND_NOT_FOUND, "no such command: " + command);
    }
  }

  // ------------------------------------------------------------------ the commands

  /** The volume's layout and use. */
  public static Map<String, Object> info(Volume v) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", v.name());
    m.put("uuid", v.uuid());
    m.put("directory", v.directory().toAbsolutePath().toString());
    m.put("size", v.size());
    m.put("blockSize", v.blockSize());
    m.put("diffMax", v.config().diffMax());
    m.put("diffUsedBytes", v.diffUsedBytes());
    m.put("origin", v.originPath().toAbsolutePath().toString());
    m.put("diffArea", v.diffAreaPath().toAbsolutePath().toString());
    m.put("snapshots", list(v));
    return m;
  }

  /** The JSON form of a snapshot, shared by every command that shows one. */
  public static Map<String, Object> snapshot(SnapshotInfo s) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", s.name());
    m.put("id", s.id());
    m.put("created", s.created().toString());
    m.put("diffBytes", s.diffBytes());
    m.put("setId", s.setId());
    m.put("attributes", new LinkedHashMap<>(s.attributes()));
    return m;
  }

  /** The volume's name and uuid, then the snapshot's JSON form. */
  private static Map<String, Object> show(Volume v, SnapshotInfo s) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("volume", v.name());
    m.put("volumeUuid", v.uuid());
    m.putAll(snapshot(s));
    return m;
  }

  private static List<Map<String, Object>> list(Volume v) {
    List<Map<String, Object>> out = new ArrayList<>();
    for (SnapshotInfo s : v.snapshots()) {
      out.add(snapshot(s));
    }
    return out;
  }

  private static Map<String, Object> create(Volumes volumes, JsonNode args) throws IOException {
    List<String> refs = volumeRefs(SNAPSHOT_CREATE, args);
    String name = args.hasNonNull("name") ? args.get("name").asText() : null;
    Map<String, String> attributes = args.hasNonNull("attributes")
        ? attributes(args.get("attributes"), SNAPSHOT_CREATE) : Map.of();
    List<Volume> vs = new ArrayList<>();
    Set<Volume> seen = new HashSet<>();
    for (String ref : refs) {
      Volume v = volumes.get(ref);
      if (!seen.add(v)) {
        throw new IllegalArgumentException("volume named twice: " + ref);
      }
      vs.add(v);
    }
    List<String> writers = writers(args);
    if (!writers.isEmpty()) {
      Duration freezeTimeout = args.hasNonNull("freezeTimeout")
          ? Duration.ofMillis(longArg(args, "freezeTimeout", 0, SNAPSHOT_CREATE))
          : ConsistentSnapshot.DEFAULT_FREEZE_TIMEOUT;
      if (freezeTimeout.isZero() || freezeTimeout.isNegative()) {
        throw invalid(SNAPSHOT_CREATE + ": \"freezeTimeout\" must be a positive number of milliseconds");
      }
      return ConsistentSnapshot.take(vs, writers, name, freezeTimeout, attributes, volumes.guards());
    }
    List<SnapshotInfo> taken = vs.size() == 1 ? List.of(vs.get(0).createSnapshot(name, attributes))
        : Volume.createSnapshotSet(vs, name, attributes);
    return created(vs, taken);
  }

  /** The writer specs of {@code snapshot-create}'s optional "writers" list. */
  private static List<String> writers(JsonNode args) throws ControlException {
    JsonNode list = args.get("writers");
    if (list == null || list.isNull()) {
      return List.of();
    }
    if (!list.isArray()) {
      throw invalid(SNAPSHOT_CREATE + ": \"writers\" must be a list of writer specs, e.g. [\"fs:/srv/db\"]");
    }
    List<String> out = new ArrayList<>();
    for (JsonNode w : list) {
      if (!w.isTextual() || w.asText().isBlank()) {
        throw invalid(SNAPSHOT_CREATE + ": every member of \"writers\" must be a writer spec string: " + w);
      }
      try {
        // a bad spec fails here, before a guard is started
        Writers.parse(w.asText()).close();
      } catch (IllegalArgumentException e) {
        throw invalid(e.getMessage());
      }
      out.add(w.asText());
    }
    return out;
  }

  /** The document of {@code snapshot-create}: the set id and each member's snapshot. */
  static Map<String, Object> created(List<Volume> vs, List<SnapshotInfo> taken) {
    List<Map<String, Object>> list = new ArrayList<>();
    for (int i = 0; i < taken.size(); i++) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("volume", vs.get(i).name());
      m.put("volumeUuid", vs.get(i).uuid());
      m.put("directory", vs.get(i).directory().toAbsolutePath().toString());
      m.putAll(snapshot(taken.get(i)));
      list.add(m);
    }
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("setId", vs.size() == 1 ? null : taken.get(0).setId());
    doc.put("snapshots", list);
    return doc;
  }

  private static Map<String, Object> delete(Volume v, SnapshotRef ref) throws IOException {
    long before = v.diffUsedBytes();
    SnapshotInfo s = v.snapshot(ref);
    v.deleteSnapshot(SnapshotRef.ofId(s.id()));
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("volume", v.name());
    m.put("volumeUuid", v.uuid());
    m.put("snapshot", s.name());
    m.put("id", s.id());
    m.put("diffUsedBytes", v.diffUsedBytes());
    m.put("diffUsedBytesBefore", before);
    return m;
  }

  private static Map<String, Object> diff(Volume v, SnapshotRef fromRef, SnapshotRef toRef) throws IOException {
    SnapshotInfo from = v.snapshot(fromRef);
    SnapshotInfo to = toRef == null ? null : v.snapshot(toRef);
    List<Range> ranges = v.changedRanges(SnapshotRef.ofId(from.id()), to == null ? null : SnapshotRef.ofId(to.id()));
    long changed = 0;
    List<Map<String, Object>> rs = new ArrayList<>();
    for (Range r : ranges) {
      changed += r.length();
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("offset", r.offset());
      m.put("length", r.length());
      rs.add(m);
    }
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("volume", v.name());
    doc.put("volumeUuid", v.uuid());
    doc.put("from", from.name());
    doc.put("fromId", from.id());
    doc.put("to", to == null ? null : to.name());
    doc.put("toId", to == null ? null : to.id());
    doc.put("ranges", rs);
    doc.put("changedBytes", changed);
    return doc;
  }

  private static Map<String, Object> export(Volume v, BlockSource source, Path file, boolean force, SnapshotInfo snapshot,
      Progress progress) throws IOException {
    long start = System.nanoTime();
    ImageFiles.Exported result = ImageFiles.copyOut(source, file, force, progress);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("volume", v.name());
    m.put("volumeUuid", v.uuid());
    m.put("snapshot", snapshot == null ? null : snapshot.name());
    m.put("snapshotId", snapshot == null ? null : snapshot.id());
    m.put("file", file.toString());
    m.put("size", result.size());
    m.put("dataBytes", result.dataBytes());
    if (snapshot != null) {
      m.put("descriptor", writeDescriptor(v, snapshot, file).toString());
    }
    m.put("seconds", (System.nanoTime() - start) / 1e9);
    return m;
  }

  /** Suffix of the descriptor written beside an exported snapshot image. */
  public static final String DESCRIPTOR_SUFFIX = ".snapshot.json";

  /**
   * Writes {@code IMAGE.snapshot.json} beside an exported snapshot image: the volume's name, uuid,
   * size and block size and the snapshot's JSON with its attributes, so that what belongs to the
   * snapshot without being in its blocks (the writers' metadata, e.g. PostgreSQL's
   * backup_label) travels with the copy. Replaces an older one (the image it described was just
   * replaced); written to a temporary file and renamed.
   */
  private static Path writeDescriptor(Volume v, SnapshotInfo snapshot, Path image) throws IOException {
    Path target = descriptorPath(image);
    writeDescriptor(target, v.name(), v.uuid(), v.size(), v.blockSize(), image.getFileName().toString(),
        snapshot(snapshot));
    return target;
  }

  /** Where the descriptor of {@code image} goes: {@code IMAGE.snapshot.json} beside it. */
  public static Path descriptorPath(Path image) {
    return image.resolveSibling(image.getFileName() + DESCRIPTOR_SUFFIX);
  }

  /**
   * Writes a snapshot descriptor (format 1, as an export writes beside its image) to {@code target}:
   * the volume's name, uuid and size, its block size when known ({@code blockSize} null leaves it
   * out), {@code image} (how the copy is named: a file name, an NBD URI) and {@code snapshot}, the
   * snapshot's JSON form (name, id, created, attributes; as {@link #snapshot(SnapshotInfo)}).
   * Replaces an older one; written to a temporary file and renamed.
   */
  public static void writeDescriptor(Path target, String volume, String volumeUuid, long size, Integer blockSize,
      String image, Map<String, Object> snapshot) throws IOException {
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("format", 1);
    d.put("volume", volume);
    d.put("volumeUuid", volumeUuid);
    d.put("size", size);
    if (blockSize != null) {
      d.put("blockSize", blockSize);
    }
    d.put("image", image);
    d.put("snapshot", snapshot);
    AtomicFile.write(target, DESCRIPTOR_JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(d), 0600);
  }

  private static final ObjectMapper DESCRIPTOR_JSON = new ObjectMapper();

  private static Map<String, Object> importFile(Volume v, Path file, long offset, Progress progress) throws IOException {
    long start = System.nanoTime();
    long length;
    try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
      length = in.size();
      if (offset < 0 || offset > v.size() || length > v.size() - offset) {
        throw new IOException(String.format("%s (%d bytes) at offset %d does not fit in volume '%s' (%d bytes)",
            file, length, offset, v.name(), v.size()));
      }
      ImageFiles.copyIn(in, length, v, offset, progress);
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("volume", v.name());
    m.put("volumeUuid", v.uuid());
    m.put("file", file.toString());
    m.put("bytes", length);
    m.put("offset", offset);
    m.put("seconds", (System.nanoTime() - start) / 1e9);
    return m;
  }

  private static Map<String, Object> plan(Volume v, RevertPlan plan) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("volume", v.name());
    m.put("volumeUuid", v.uuid());
    m.put("target", snapshot(plan.target()));
    m.put("changedBytes", plan.changedBytes());
    List<Map<String, Object>> deleted = new ArrayList<>();
    for (SnapshotInfo s : plan.deleted()) {
      deleted.add(snapshot(s));
    }
    m.put("deleted", deleted);
    return m;
  }

  private static Map<String, Object> revert(Volumes volumes, Volume v, SnapshotRef ref, Progress progress)
      throws IOException {
    SnapshotInfo target = v.snapshot(ref);
    volumes.beforeRevert(v);
    long start = System.nanoTime();
    v.revert(SnapshotRef.ofId(target.id()), progress);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("volume", v.name());
    m.put("volumeUuid", v.uuid());
    m.put("snapshot", target.name());
    m.put("snapshotId", target.id());
    m.put("seconds", (System.nanoTime() - start) / 1e9);
    return m;
  }

  // ------------------------------------------------------------------ arguments

  /** The non-empty string argument {@code field} of {@code command}; InvalidArgument when it is missing or not one. */
  public static String text(JsonNode args, String field, String command) throws ControlException {
    JsonNode n = args.get(field);
    if (n == null || !n.isTextual() || n.asText().isEmpty()) {
      throw invalid(command + " needs \"" + field + "\": a non-empty string");
    }
    return n.asText();
  }

  /**
   * A snapshot named by an argument: {@code id=N} names it by its id (snapshot names cannot hold
   * '='), anything else by its name.
   */
  static SnapshotRef ref(JsonNode args, String field, String command) throws ControlException {
    String s = text(args, field, command);
    if (s.startsWith("id=")) {
      try {
        long id = Long.parseLong(s.substring(3));
        if (id >= 1) {
          return SnapshotRef.ofId(id);
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      throw invalid("a snapshot id (id=N) must be a positive integer: " + s);
    }
    return SnapshotRef.ofName(s);
  }

  /**
   * An attributes argument: a JSON object whose values are all strings, in its order;
   * InvalidArgument otherwise. Keys and sizes are checked by the volume.
   */
  static Map<String, String> attributes(JsonNode n, String command) throws ControlException {
    if (!n.isObject()) {
      throw invalid(command + ": \"attributes\" must be an object of string values: " + n);
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!e.getValue().isTextual()) {
        throw invalid(command + ": attribute \"" + e.getKey() + "\" must be a string: " + e.getValue());
      }
      out.put(e.getKey(), e.getValue().asText());
    }
    return out;
  }

  private static long longArg(JsonNode args, String field, long dflt, String command) throws ControlException {
    JsonNode n = args.get(field);
    if (n == null || n.isNull()) {
      return dflt;
    }
    if (!n.canConvertToLong() || !n.isIntegralNumber()) {
      throw invalid(command + ": \"" + field + "\" must be an integer: " + n);
    }
    return n.asLong();
  }

  private static ControlException invalid(String message) {
    return new ControlException(ControlException.INVALID_ARGUMENT, message);
  }
}
