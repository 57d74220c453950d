package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.requestor.agent.Agent;
import dev.shade.requestor.agent.AgentConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade schedule show}: from the config file and the volumes when no agent runs, from the
 * running agent's control socket (with its last run), as text and as JSON.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ScheduleCommandTest {
  @TempDir Path tmp;

  private Path config(String every) throws Exception {
    TestVolumes.create(tmp.resolve("db"), "1M");
    Path f = tmp.resolve("agent.json");
    Files.writeString(f, "{\"control\": \"control.sock\", \"volumes\": [\"db\"], \"schedules\": [{\"name\": \"hourly\","
        + " \"volumes\": [\"db\"], \"every\": \"" + every + "\", \"timeZone\": \"Europe/Berlin\", \"keep\": {\"last\": 1, \"daily\": 1}}]}");
    return f;
  }

  @Test
  void show_fromTheConfig_withoutAnAgent_plansTheVolumesSnapshots() throws Exception {
    Path f = config("hourly");
    Path db = tmp.resolve("db");
    // snapshots the schedule made (its attribute says so), and one by hand
    Cli.run("snapshot", "create", db, "--name", "hourly-20261129T100000Z", "--attribute", "shade.schedule=hourly").ok();
    Cli.run("snapshot", "create", db, "--name", "by-hand").ok();
    Cli.run("snapshot", "create", db, "--name", "hourly-20261130T100000Z", "--attribute", "shade.schedule=hourly").ok();
    Cli.run("snapshot", "create", db, "--name", "hourly-20261130T110000Z", "--attribute", "shade.schedule=hourly").ok();
    Cli.Result r = Cli.run("schedule", "show", "--config", f, "--json").ok();
    JsonNode s = r.json().get("schedules").get(0);
    assertEquals("hourly", s.get("name").asText());
    assertEquals(3, s.get("next").size());
    assertTrue(s.get("lastRun").isNull());
    JsonNode plan = s.get("plans").get(0).get("snapshots");
    assertEquals(4, plan.size(), plan.toString());
    int pruned = 0;
    for (JsonNode e : plan) {
      if (e.get("name").asText().equals("by-hand")) {
        assertEquals("keep", e.get("action").asText());
      }
      pruned += e.get("action").asText().equals("prune") ? 1 : 0;
    }
    // created within a second of each other, in one local day: keep-last keeps the newest, keep-daily finds the day covered
    assertEquals(2, pruned, plan.toString());

    Cli.Result text = Cli.run("schedule", "show", "--config", f).ok();
    assertTrue(text.out().contains("hourly: hourly in Europe/Berlin"), text.out());
    assertTrue(text.out().contains("keep: last 1, daily 1; catch-up: one; snapshots made by hand: never pruned"), text.out());
    assertTrue(text.out().contains("no agent answers on"), text.out());
    assertTrue(text.out().contains("last run: unknown (no agent running)"), text.out());
    assertTrue(text.out().contains("keep-last (1 of 1)"), text.out());
    assertTrue(text.out().contains("made by hand"), text.out());
    assertTrue(text.out().contains("1 kept, 2 to prune") || text.out().contains("2 kept, 2 to prune"), text.out());
    assertEquals(4, Cli.run("snapshot", "list", db, "--json").ok().json().size(), "show deletes nothing");
  }

  @Test
  void show_throughTheRunningAgent_hasTheLastRun() throws Exception {
    Path f = config("every 1s");
    try (Agent agent = Agent.start(AgentConfig.load(f))) {
      JsonNode s = null;
      for (int i = 0; i < 100; i++) {
        s = Cli.run("schedule", "show", "--socket", agent.controlSocket(), "--json").ok().json().get("schedules").get(0);
        if (!s.get("lastRun").isNull()) {
          break;
        }
        Thread.sleep(100);
      }
      assertTrue(s.get("lastRun").get("ok").asBoolean(), s.toString());
      assertTrue(s.get("lastRun").get("snapshot").asText().matches("hourly-\\d{8}T\\d{6}Z"), s.toString());
      Cli.Result text = Cli.run("schedule", "show", "--config", f).ok();
      assertTrue(text.out().contains("Schedules from the agent on"), text.out());
      assertTrue(text.out().contains("last run: slot "), text.out());
    }
  }

  @Test
  void show_noAgent_failsWithAdvice() {
    Cli.Result r = Cli.run("schedule", "show", "--socket", tmp.resolve("none.sock"));
    assertEquals(1, r.code(), r.toString());
    assertTrue(r.err().contains("no agent answers on " + tmp.resolve("none.sock")), r.err());
    assertFalse(r.err().contains("Exception"), r.err());
    assertEquals(2, Cli.run("schedule", "show", "--socket", "a", "--config", "b").code(), "one source at a time");
  }
}
