package dev.shade.requestor.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.control.ControlClient;
import dev.shade.requestor.schedule.CatchUp;
import dev.shade.requestor.schedule.Schedule;
import dev.shade.requestor.schedule.ScheduleSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real agent on real volumes with a schedule in its config file: snapshots of both volumes
 * appear as one set each second and are pruned to keep-last, a snapshot made by hand stays,
 * SCHEDULE_RUN events and schedule-show answer on the control socket; and the config's errors.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AgentScheduleTest {
  @TempDir Path tmp;

  private Path config(String schedules) throws IOException {
    Path f = tmp.resolve("agent.json");
    Files.writeString(f, "{\"control\": \"control.sock\", \"volumes\": [\"db\", \"wal\"]"
        + (schedules == null ? "" : ", \"schedules\": " + schedules) + "}");
    return f;
  }

  @Test
  void agent_withEverySecondSchedule_takesAndPrunesSnapshots() throws Exception {
    for (String v : List.of("db", "wal")) {
      try (Volume vol = Volume.create(tmp.resolve(v), VolumeConfig.of(1 << 20).withDiffMax(1 << 20))) {
        if (v.equals("db")) {
          vol.createSnapshot("by-hand");
        }
      }
    }
    AgentConfig cfg = AgentConfig.load(config("[{\"name\": \"fast\", \"volumes\": [\"db\", \"wal\"], \"every\": \"every 1s\","
        + " \"timeZone\": \"Europe/Berlin\", \"keep\": {\"last\": 2}}]"));
    try (Agent agent = Agent.start(cfg);
        ControlClient c = ControlClient.connect(agent.controlSocket(), Duration.ofSeconds(5), true)) {
      c.execute("capabilities", java.util.Map.of("enable", List.of("events")));
      Set<String> ran = new HashSet<>();
      while (ran.size() < 4) {
        JsonNode e = c.nextEvent();
        if (e.path("event").asText().equals("SCHEDULE_RUN")) {
          assertTrue(e.path("data").path("ok").asBoolean(), e.toString());
          ran.add(e.path("data").path("snapshot").asText());
        }
        assertFalse(e.path("event").asText().equals("SCHEDULE_FAILED"), e.toString());
      }
      for (Volume v : agent.volumes()) {
        List<String> fast = v.snapshots().stream().map(SnapshotInfo::name).filter(n -> n.startsWith("fast-")).toList();
        assertTrue(fast.size() >= 1 && fast.size() <= 3, v.name() + ": " + fast);
        assertTrue(fast.stream().allMatch(n -> n.matches("fast-\\d{8}T\\d{6}Z")), fast.toString());
      }
      Volume db = agent.volumes().get(0);
      assertTrue(db.snapshots().stream().anyMatch(s -> s.name().equals("by-hand")), "made by hand: never pruned");
      SnapshotInfo newest = db.snapshots().stream().filter(s -> s.name().startsWith("fast-")).reduce((a, b) -> b).orElseThrow();
      assertTrue(newest.setId() != null, "both volumes in one set: " + newest);

      JsonNode show = c.execute("schedule-show", null);
      JsonNode s = show.get("schedules").get(0);
      assertEquals("fast", s.get("name").asText());
      assertEquals("every 1s", s.get("every").asText());
      assertEquals(3, s.get("next").size());
      assertTrue(s.get("lastRun").get("ok").asBoolean(), s.toString());
      JsonNode plan = s.get("plans").get(0).get("snapshots");
      assertTrue(plan.size() >= 2, plan.toString());
      boolean sawHand = false;
      for (JsonNode e : plan) {
        if (e.get("name").asText().equals("by-hand")) {
          sawHand = true;
          assertEquals("keep", e.get("action").asText());
          assertTrue(e.get("reason").asText().startsWith("made by hand"), e.toString());
        }
      }
      assertTrue(sawHand, plan.toString());
      assertTrue(c.execute("query-commands", null).toString().contains("schedule-show"));
    }
  }

  @Test
  void agent_withoutSchedules_takesNone_andShowIsEmpty() throws Exception {
    for (String v : List.of("db", "wal")) {
      Volume.create(tmp.resolve(v), VolumeConfig.of(1 << 20).withDiffMax(1 << 20)).close();
    }
    AgentConfig cfg = AgentConfig.load(config(null));
    assertEquals(List.of(), cfg.schedules());
    try (Agent agent = Agent.start(cfg);
        ControlClient c = ControlClient.connect(agent.controlSocket(), Duration.ofSeconds(5), false)) {
      c.execute("capabilities", java.util.Map.of("enable", List.of()));
      assertEquals(0, c.execute("schedule-show", null).get("schedules").size());
      Thread.sleep(1200);
      assertEquals(List.of(), agent.volumes().get(0).snapshots());
    }
  }

  @Test
  void config_schedule_defaultsAndValues() throws Exception {
    AgentConfig cfg = AgentConfig.load(config("[{\"name\": \"hourly\", \"volumes\": [\"db\"]},"
        + " {\"name\": \"nightly\", \"volumes\": [\"wal\", \"db\"], \"writers\": [\"fs:/mnt/db\"], \"every\": \"daily at 02:30\","
        + " \"timeZone\": \"America/New_York\", \"keep\": {\"daily\": 7, \"weekly\": 4}, \"catchUp\": \"skip\","
        + " \"pruneManual\": true, \"freezeTimeout\": \"10s\"}]"));
    Schedule h = cfg.schedules().get(0);
    assertEquals(ScheduleSpec.DEFAULT, h.every());
    assertEquals(List.of(tmp.resolve("db").toAbsolutePath().normalize()), h.volumes());
    assertTrue(h.keep().keepAll());
    assertEquals(CatchUp.ONE, h.catchUp());
    assertEquals(ZoneId.systemDefault(), h.timeZone());
    assertFalse(h.pruneManual());
    assertEquals(Duration.ofSeconds(5), h.freezeTimeout());
    Schedule n = cfg.schedules().get(1);
    assertEquals("daily at 02:30", n.every().toString());
    assertEquals(ZoneId.of("America/New_York"), n.timeZone());
    assertEquals(List.of("fs:/mnt/db"), n.writers());
    assertEquals(7, n.keep().daily());
    assertEquals(null, n.keep().last());
    assertEquals(CatchUp.SKIP, n.catchUp());
    assertTrue(n.pruneManual());
    assertEquals(Duration.ofSeconds(10), n.freezeTimeout());
  }

  @Test
  void config_scheduleErrors_nameTheFileAndTheKey() throws Exception {
    String[][] cases = {
        {"[{\"name\": \"x\", \"volumes\": [\"other\"]}]", "\"schedules[0].volumes\"", "is not one of the agent's"},
        {"[{\"name\": \"x\", \"volumes\": [\"db\"], \"evry\": \"hourly\"}]", "\"schedules[0].evry\"", "unknown key"},
        {"[{\"name\": \"x\", \"volumes\": [\"db\"], \"every\": \"weekly\"}]", "\"schedules[0].every\"", "invalid schedule 'weekly'"},
        {"[{\"name\": \"x\", \"volumes\": [\"db\"], \"keep\": {\"daily\": 0}}]", "\"schedules[0].keep.daily\"", "at least 1"},
        {"[{\"name\": \"x\", \"volumes\": [\"db\"], \"keep\": {\"dayly\": 3}}]", "\"schedules[0].keep.dayly\"", "unknown rule"},
        {"[{\"name\": \"x\", \"volumes\": [\"db\"], \"timeZone\": \"Mars/Olympus\"}]", "\"schedules[0].timeZone\"", "unknown time zone"},
        {"[{\"name\": \"x\", \"volumes\": [\"db\"], \"catchUp\": \"all\"}]", "\"schedules[0].catchUp\"", "\"one\" or \"skip\""},
        {"[{\"name\": \"x\", \"volumes\": [\"db\"]}, {\"name\": \"x\", \"volumes\": [\"wal\"]}]", "\"schedules[1].name\"", "twice"},
        {"[{\"volumes\": [\"db\"]}]", "\"schedules[0].name\"", "needs a name"},
        {"[{\"name\": \"a b\", \"volumes\": [\"db\"]}]", "\"schedules[0].name\"", "not a valid name"},
        {"[{\"name\": \"x\", \"volumes\": []}]", "\"schedules[0].volumes\"", "non-empty"},
        {"{}", "\"schedules\"", "must be a list"},
    };
    for (String[] c : cases) {
      Path f = config(c[0]);
      IOException e = assertThrows(IOException.class, () -> AgentConfig.load(f), c[0]);
      assertTrue(e.getMessage().startsWith("agent config " + f + ": "), e.getMessage());
      assertTrue(e.getMessage().contains(c[1]) && e.getMessage().contains(c[2]), c[0] + " -> " + e.getMessage());
    }
  }
}
