package dev.shade.requestor.schedule;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.requestor.agent.ConfigSyntax;
import java.io.IOException;
import java.nio.file.Path;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Reads the {@code "schedules"} list of the agent's config file. Errors are
 * {@link IOException}s naming the file and the key: {@code agent config F: "schedules[1].keep.daily" ...}.
 */
public final class ScheduleConfig {
  private static final Set<String> KEYS = Set.of("name", "volumes", "writers", "every", "timeZone", "keep", "catchUp",
      "pruneManual", "freezeTimeout");
  private static final Set<String> KEEP = Set.of("last", "hourly", "daily", "weekly", "monthly", "yearly");

  private ScheduleConfig() {}

  /**
   * Parses {@code list}, the value of "schedules".
   *
   * @param file the config file, for messages
   * @param base the directory relative volume paths are taken from
   * @param agentVolumes the agent's volumes (absolute, normalised): every volume of a schedule must be one
   */
  public static List<Schedule> parse(JsonNode list, Path file, Path base, List<Path> agentVolumes) throws IOException {
    if (list == null || list.isNull()) {
      return List.of();
    }
    if (!list.isArray()) {
      throw error(file, "schedules", "must be a list of schedules");
    }
    List<Schedule> out = new ArrayList<>();
    Set<String> names = new HashSet<>();
    for (int i = 0; i < list.size(); i++) {
      String at = "schedules[" + i + "]";
      Schedule s = one(list.get(i), file, base, agentVolumes, at);
      if (!names.add(s.name())) {
        throw error(file, at + ".name", "names a schedule twice: " + s.name());
      }
      out.add(s);
    }
    return out;
  }

  private static Schedule one(JsonNode n, Path file, Path base, List<Path> agentVolumes, String at) throws IOException {
    if (!n.isObject()) {
      throw error(file, at, "must be an object");
    }
    for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!KEYS.contains(k)) {
        throw error(file, at + "." + k, "is an unknown key (known: " + String.join(", ", KEYS.stream().sorted().toList()) + ")");
      }
    }
    String name = text(n, "name", file, at);
    if (name == null) {
      throw error(file, at + ".name", "is missing: every schedule needs a name");
    }
    if (!Schedule.NAME.matcher(name).matches()) {
      throw error(file, at + ".name", "'" + name + "' is not a valid name: use 1-64 letters, digits and . _ + -");
    }
    List<Path> volumes = new ArrayList<>();
    JsonNode vs = n.get("volumes");
    if (vs == null || !vs.isArray() || vs.isEmpty()) {
      throw error(file, at + ".volumes", "must be a non-empty list of volume directories");
    }
    for (JsonNode v : vs) {
      if (!v.isTextual() || v.asText().isBlank()) {
        throw error(file, at + ".volumes", "every volume must be a directory path: " + v);
      }
      Path p = base.resolve(v.asText()).toAbsolutePath().normalize();
      if (!agentVolumes.contains(p)) {
        throw error(file, at + ".volumes", p + " is not one of the agent's \"volumes\" (" + agentVolumes + ")");
      }
      if (volumes.contains(p)) {
        throw error(file, at + ".volumes", "names " + p + " twice");
      }
      volumes.add(p);
    }
    List<String> writers = new ArrayList<>();
    JsonNode ws = n.get("writers");
    if (ws != null && !ws.isNull()) {
      if (!ws.isArray()) {
        throw error(file, at + ".writers", "must be a list of writer specs, e.g. [\"fs:/mnt/db\"]");
      }
      for (JsonNode w : ws) {
        if (!w.isTextual() || w.asText().isBlank()) {
          throw error(file, at + ".writers", "every writer must be a non-empty string: " + w);
        }
        writers.add(w.asText());
      }
    }
    ScheduleSpec every = ScheduleSpec.DEFAULT;
    String e = text(n, "every", file, at);
    if (e != null) {
      try {
        every = ScheduleSpec.parse(e);
      } catch (IllegalArgumentException x) {
        throw error(file, at + ".every", x.getMessage());
      }
    }
    ZoneId zone = ZoneId.systemDefault();
    String z = text(n, "timeZone", file, at);
    if (z != null) {
      try {
        zone = ZoneId.of(z);
      } catch (DateTimeException x) {
        throw error(file, at + ".timeZone", "unknown time zone '" + z + "': use a tz database name such as Europe/Berlin, or UTC");
      }
    }
    Retention keep = keep(n.get("keep"), file, at + ".keep");
    CatchUp catchUp = CatchUp.ONE;
    String c = text(n, "catchUp", file, at);
    if (c != null) {
      try {
        catchUp = CatchUp.valueOf(c.toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException x) {
        throw error(file, at + ".catchUp", "must be \"one\" or \"skip\": " + c);
      }
    }
    JsonNode pm = n.get("pruneManual");
    if (pm != null && !pm.isNull() && !pm.isBoolean()) {
      throw error(file, at + ".pruneManual", "must be true or false: " + pm);
    }
    Duration freeze = Schedule.DEFAULT_FREEZE_TIMEOUT;
    String f = text(n, "freezeTimeout", file, at);
    if (f != null) {
      try {
        freeze = ConfigSyntax.duration(f);
      } catch (IllegalArgumentException x) {
        throw error(file, at + ".freezeTimeout", x.getMessage());
      }
    }
    return new Schedule(name, volumes, writers, every, zone, keep, catchUp, pm != null && pm.asBoolean(false), freeze);
  }

  private static Retention keep(JsonNode k, Path file, String at) throws IOException {
    if (k == null || k.isNull()) {
      return Retention.KEEP_ALL;
    }
    if (!k.isObject()) {
      throw error(file, at, "must be an object such as {\"last\": 3, \"daily\": 7}");
    }
    for (Iterator<String> it = k.fieldNames(); it.hasNext(); ) {
      String key = it.next();
      if (!KEEP.contains(key)) {
        throw error(file, at + "." + key, "is an unknown rule (known: last, hourly, daily, weekly, monthly, yearly)");
      }
    }
    Integer[] counts = new Integer[6];
    String[] order = {"last", "hourly", "daily", "weekly", "monthly", "yearly"};
    for (int i = 0; i < order.length; i++) {
      JsonNode v = k.get(order[i]);
      if (v == null || v.isNull()) {
        continue;
      }
      if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 1) {
        throw error(file, at + "." + order[i], "must be a whole number of at least 1 (leave it out to not use the rule): " + v);
      }
      counts[i] = v.asInt();
    }
    return new Retention(counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
  }

  private static String text(JsonNode n, String key, Path file, String at) throws IOException {
    JsonNode v = n.get(key);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isTextual() || v.asText().isBlank()) {
      throw error(file, at + "." + key, "must be a non-empty string: " + v);
    }
    return v.asText();
  }

  private static IOException error(Path file, String key, String what) {
    return new IOException("agent config " + file + ": \"" + key + "\" " + what);
  }
}
