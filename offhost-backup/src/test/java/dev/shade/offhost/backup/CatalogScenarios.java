package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.ChildJvm;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * What every catalog database must do, as scenarios that the SQLite and the PostgreSQL tests
 * run (as subclasses of {@link CatalogContract}) against a fresh, empty catalog of theirs.
 */
final class CatalogScenarios {
  private CatalogScenarios() {}

  /** A connection of the tests' own to {@code where}, set up as the catalog sets up its own. */
  static Connection connect(CatalogLocation where) throws SQLException {
    Connection c = DriverManager.getConnection(where.jdbcUrl());
    where.dialect().configure(c);
    return c;
  }

  /** The first column of the first row of {@code sql}, as a string. */
  static String scalar(CatalogLocation where, String sql) throws SQLException {
    try (Connection c = connect(where); Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) {
      return r.next() ? r.getString(1) : null;
    }
  }

  static void execute(CatalogLocation where, String... sql) throws SQLException {
    try (Connection c = connect(where); Statement s = c.createStatement()) {
      for (String q : sql) {
        s.execute(q);
      }
    }
  }

  /**
   * {@code n} synthetic steps: the first makes {@code step_log}, each later one a table of its
   * own (made without IF NOT EXISTS, so applying it twice fails) and a row in the log.
   */
  static List<String> syntheticSteps(int n) {
    List<String> steps = new ArrayList<>();
    steps.add("CREATE TABLE step_log (id {{id}}, step INTEGER NOT NULL, note TEXT)");
    for (int i = 2; i <= n; i++) {
      steps.add("CREATE TABLE step_" + i + " (id {{id}}, v REAL, b BLOB);"
          + " INSERT INTO step_log (step, note) VALUES (" + i + ", 'applied')");
    }
    return steps;
  }

  /** A fresh catalog's schema_version: one row per step, each with its time. */
  static void freshCatalog_recordsEachStepWithItsTime(CatalogLocation where) throws Exception {
    Instant before = Instant.now().minusSeconds(1);
    try (Catalog c = Catalog.open(where)) {
      assertEquals(where, c.location());
    }
    try (Connection c = connect(where)) {
      List<String[]> h = SchemaMigrator.history(c);
      assertEquals(Catalog.SCHEMA_VERSION, h.size(), "one row per step");
      for (int i = 0; i < h.size(); i++) {
        assertEquals(Integer.toString(i + 1), h.get(i)[0]);
        Instant applied = Instant.parse(h.get(i)[1]);
        assertTrue(!applied.isBefore(before) && !applied.isAfter(Instant.now()), h.get(i)[1]);
      }
    }
    try (Catalog c = Catalog.open(where)) { // reopening applies nothing
      assertTrue(c.jobs().isEmpty());
    }
    assertEquals(Integer.toString(Catalog.SCHEMA_VERSION), scalar(where, "SELECT count(*) FROM schema_version"));
  }

  /** A catalog of a schema newer than this code is refused, and left as it was. */
  static void newerCatalog_isRefused(CatalogLocation where) throws Exception {
    try (Catalog c = Catalog.open(where)) {
      c.startJob(new FakeSource("s", 4, new byte[4096], Map.of()).identity(), "full", -1, -1, "p", 65536,
          Instant.now());
    }
    int newer = Catalog.SCHEMA_VERSION + 1;
    execute(where, "INSERT INTO schema_version (version, applied) VALUES (" + newer + ", '2027-01-01T00:00:00Z')");
    IOException e = assertThrows(IOException.class, () -> Catalog.open(where));
    assertTrue(e.getMessage().contains("has schema version " + newer + ", newer than this shade's "
        + Catalog.SCHEMA_VERSION), e.getMessage());
    assertTrue(e.getMessage().contains(where.toString()), "names the catalog: " + e.getMessage());
    assertEquals(Integer.toString(newer), scalar(where, "SELECT max(version) FROM schema_version"));
    assertEquals("1", scalar(where, "SELECT count(*) FROM jobs"), "the rows are untouched");
  }

  /** A step that fails leaves nothing of itself, its recording included; the earlier steps stay. */
  static void failingStep_isRolledBackWhole(CatalogLocation where) throws Exception {
    List<String> steps = new ArrayList<>(syntheticSteps(2));
    steps.add("CREATE TABLE step_3 (id {{id}}); INSERT INTO step_log (step, note) VALUES (3, 'half');"
        + " INSERT INTO no_such_table VALUES (1)");
    try (Connection c = connect(where)) {
      SQLException e = assertThrows(SQLException.class,
          () -> SchemaMigrator.migrate(c, where.dialect(), steps, where.toString(), Clock.systemUTC()));
      assertTrue(e.getMessage().startsWith("schema step 3 failed: "), e.getMessage());
      assertTrue(c.getAutoCommit(), "the connection is back in auto-commit");
    }
    assertEquals("2", scalar(where, "SELECT max(version) FROM schema_version"));
    assertEquals("1", scalar(where, "SELECT count(*) FROM step_log"), "step 3's insert was rolled back");
    assertThrows(SQLException.class, () -> scalar(where, "SELECT count(*) FROM step_3"),
        "step 3's table was rolled back with it");
    try (Connection c = connect(where)) { // the step mended: applied from version 2
      steps.set(2, "CREATE TABLE step_3 (id {{id}}); INSERT INTO step_log (step, note) VALUES (3, 'whole')");
      assertEquals(2, SchemaMigrator.migrate(c, where.dialect(), steps, where.toString(), Clock.systemUTC()));
    }
    assertEquals("whole", scalar(where, "SELECT note FROM step_log WHERE step = 3"));
  }

  /**
   * {@code migrators} connections migrating one database at once through {@code steps} steps:
   * each step is applied once, and only the first migrator found the database empty.
   */
  static void concurrentMigrations_applyEachStepOnce(CatalogLocation where, int migrators, int steps)
      throws Exception {
    List<String> list = syntheticSteps(steps);
    CyclicBarrier start = new CyclicBarrier(migrators);
    ExecutorService pool = Executors.newFixedThreadPool(migrators);
    try {
      List<Future<Integer>> found = new ArrayList<>();
      for (int i = 0; i < migrators; i++) {
        found.add(pool.submit(() -> {
          try (Connection c = connect(where)) {
            start.await(30, TimeUnit.SECONDS);
            return SchemaMigrator.migrate(c, where.dialect(), list, where.toString(), Clock.systemUTC());
          }
        }));
      }
      List<Integer> versions = new ArrayList<>();
      for (Future<Integer> f : found) {
        versions.add(f.get(120, TimeUnit.SECONDS));
      }
      assertEquals(1, versions.stream().filter(v -> v == 0).count(), "one migrator found it empty: " + versions);
    } finally {
      pool.shutdownNow();
    }
    assertStepsAppliedOnce(where, steps);
  }

  /** Every synthetic step recorded once in schema_version (with a time) and in step_log. */
  static void assertStepsAppliedOnce(CatalogLocation where, int steps) throws Exception {
    assertEquals(Integer.toString(steps), scalar(where, "SELECT count(*) FROM schema_version"));
    assertEquals(Integer.toString(steps), scalar(where, "SELECT count(DISTINCT version) FROM schema_version"));
    assertEquals("0", scalar(where, "SELECT count(*) FROM schema_version WHERE applied IS NULL"));
    assertEquals(Integer.toString(steps - 1), scalar(where, "SELECT count(*) FROM step_log"));
    assertEquals(Integer.toString(steps - 1), scalar(where, "SELECT count(DISTINCT step) FROM step_log"));
  }

  /** {@code n} catalogs opened at once on an empty database: all open, the schema made once. */
  static void catalogsOpenedAtOnce_makeTheSchemaOnce(CatalogLocation where, int n) throws Exception {
    CyclicBarrier start = new CyclicBarrier(n);
    ExecutorService pool = Executors.newFixedThreadPool(n);
    try {
      List<Future<?>> all = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        all.add(pool.submit(() -> {
          start.await(30, TimeUnit.SECONDS);
          try (Catalog c = Catalog.open(where)) {
            return c.jobs().size();
          }
        }));
      }
      for (Future<?> f : all) {
        assertEquals(0, f.get(120, TimeUnit.SECONDS));
      }
    } finally {
      pool.shutdownNow();
    }
    assertEquals(Integer.toString(Catalog.SCHEMA_VERSION), scalar(where, "SELECT count(*) FROM schema_version"));
  }

  /**
   * Two migrating processes ({@link MigrateChild}) started together on one database: each step
   * applied once.
   */
  static void twoProcessesMigrating_applyEachStepOnce(Path workDir, CatalogLocation where, int steps)
      throws Exception {
    try (ChildJvm a = ChildJvm.start(workDir, MigrateChild.class, where.jdbcUrl(), Integer.toString(steps));
        ChildJvm b = ChildJvm.start(workDir, MigrateChild.class, where.jdbcUrl(), Integer.toString(steps))) {
      assertNotNull(a.awaitLine("READY", Duration.ofSeconds(60)), a::output);
      assertNotNull(b.awaitLine("READY", Duration.ofSeconds(60)), b::output);
      a.send("GO");
      b.send("GO");
      String da = a.awaitLine("DONE", Duration.ofSeconds(120));
      String db = b.awaitLine("DONE", Duration.ofSeconds(120));
      assertNotNull(da, a::output);
      assertNotNull(db, b::output);
      assertTrue(a.linesStartingWith("FAILED").isEmpty() && b.linesStartingWith("FAILED").isEmpty(),
          a.output() + "\n" + b.output());
      Set<String> found = Set.of(da, db);
      assertTrue(found.contains("DONE found=0") && found.size() == 2,
          "one found the database empty, the other found the steps done: " + da + ", " + db);
    }
    assertStepsAppliedOnce(where, steps);
  }

  /**
   * Two catalogs (two backup servers) recording {@code jobsEach} jobs each at once: every id
   * distinct, every job with its own archive and chunks.
   */
  static void twoWriters_neverCollide(CatalogLocation where, int jobsEach) throws Exception {
    try (Catalog first = Catalog.open(where)) {
      assertTrue(first.jobs().isEmpty());
    }
    CyclicBarrier start = new CyclicBarrier(2);
    long t0 = System.nanoTime();
    Map<Long, String> cartridgeOfJob = new ConcurrentHashMap<>();
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      List<Future<?>> all = new ArrayList<>();
      for (int w = 0; w < 2; w++) {
        String server = "srv" + w;
        all.add(pool.submit(() -> {
          try (Catalog c = Catalog.open(where)) {
            start.await(30, TimeUnit.SECONDS);
            for (int j = 0; j < jobsEach; j++) {
              SnapshotIdentity id = new SnapshotIdentity("db-" + server, "uuid-" + server, "s" + j, j + 1,
                  Instant.parse("2026-12-01T10:00:00Z"), 3 * 65536L);
              long job = c.startJob(id, "full", -1, -1, "pool", 65536, Instant.now());
              String cart = server.toUpperCase() + "-" + j;
              List<ChunkEntry> chunks = List.of(new ChunkEntry(0, 65536, cart + "/0", false),
                  new ChunkEntry(65536, 65536, null, true), new ChunkEntry(131072, 65536, cart + "/2", false));
              c.completeJob(job, cart, j + 1, 1000 + j, "m-" + cart, chunks, 2 * 65536L, null, Instant.now());
              assertEquals(null, cartridgeOfJob.put(job, cart), "job id " + job + " handed out twice");
            }
          }
          return null;
        }));
      }
      for (Future<?> f : all) {
        f.get(300, TimeUnit.SECONDS);
      }
      System.out.printf("two writers on %s: %d jobs (start + complete, 3 chunks each) in %.0f ms%n",
          where.isPostgresql() ? "PostgreSQL" : "SQLite", 2 * jobsEach, (System.nanoTime() - t0) / 1e6);
    } finally {
      pool.shutdownNow();
    }
    try (Catalog c = Catalog.open(where)) {
      List<Catalog.JobRecord> jobs = c.jobs();
      assertEquals(2 * jobsEach, jobs.size());
      Set<Long> archiveIds = new HashSet<>();
      for (Catalog.JobRecord j : jobs) {
        String cart = cartridgeOfJob.get(j.id());
        assertEquals(Catalog.OK, j.outcome());
        assertEquals(cart, j.archive().cartridge(), "job " + j.id());
        assertEquals("m-" + cart, j.archive().manifestSha256());
        assertTrue(j.snapshot().volume().equals("db-" + cart.substring(0, 4).toLowerCase()), j.toString());
        assertTrue(archiveIds.add(j.archive().id()), "archive id " + j.archive().id() + " twice");
        List<ChunkEntry> chunks = c.chunks(j.archive().id());
        assertEquals(List.of(new ChunkEntry(0, 65536, cart + "/0", false), new ChunkEntry(65536, 65536, null, true),
            new ChunkEntry(131072, 65536, cart + "/2", false)), chunks, "job " + j.id());
      }
      assertFalse(jobs.isEmpty());
    }
  }

  /**
   * Jobs left running: only those of this host and library whose process is gone are marked
   * interrupted, each once, however many catalogs (servers, commands) look at once; jobs of other
   * hosts or libraries, of live processes, and those recorded before step 5 are left alone.
   */
  static void interruptedJobs_onlyThisHostsAndLibrarysDeadOnes(CatalogLocation where) throws Exception {
    JobOwner self = new JobOwner("backup1", 4242, Instant.parse("2026-12-01T09:00:00Z"), "/srv/vtl");
    try (Catalog c = Catalog.open(where); Catalog other = Catalog.open(where)) {
      Map<String, Long> ids = new java.util.LinkedHashMap<>();
      ids.put("dead", start(c, 1, new JobOwner("backup1", 100, Instant.parse("2026-12-01T08:00:00Z"), "/srv/vtl")));
      ids.put("alive", start(c, 2, self));
      ids.put("otherHost", start(c, 3, new JobOwner("backup2", 100, null, "/srv/vtl")));
      ids.put("otherLibrary", start(c, 4, new JobOwner("backup1", 100, null, "/srv/vtl2")));
      ids.put("noOwner", c.startJob(identity(5), "full", -1, -1, "pool", 65536, Instant.now()));
      long done = start(c, 6, new JobOwner("backup1", 100, null, "/srv/vtl"));
      c.failJob(done, "the source failed", Instant.now());
      java.util.function.Predicate<JobOwner> alive = o -> o.pid() == self.pid();

      Instant now = Instant.parse("2026-12-01T10:00:00Z");
      List<Catalog.JobRecord> marked = c.markInterrupted(self, alive, now);
      assertEquals(List.of(ids.get("dead")), marked.stream().map(Catalog.JobRecord::id).toList());
      Catalog.JobRecord j = marked.get(0);
      assertEquals(Catalog.FAILED, j.outcome());
      assertEquals(now, j.ended());
      assertEquals(Catalog.INTERRUPTED + "the backup process (pid 100 on host backup1, started 2026-12-01T08:00:00Z)"
          + " ended before the job did, so nothing of it is good; found at " + now, j.message());
      assertEquals(List.of(), other.markInterrupted(self, alive, now), "marked once");
      for (String k : List.of("alive", "otherHost", "otherLibrary", "noOwner")) {
        assertEquals(Catalog.RUNNING, c.job(ids.get(k)).orElseThrow().outcome(), k);
      }
      assertEquals("the source failed", c.job(done).orElseThrow().message());

      assertEquals(List.of(ids.get("dead")), other.interruptedWithoutRecord(self));
      c.setRecordLocation(ids.get("dead"), "SHD001", 7);
      assertEquals(List.of(), other.interruptedWithoutRecord(self));
      // the other host's server finds its own dead job
      JobOwner backup2 = new JobOwner("backup2", 1, null, "/srv/vtl");
      assertEquals(List.of(ids.get("otherHost")),
          other.markInterrupted(backup2, o -> false, now).stream().map(Catalog.JobRecord::id).toList());
    }
  }

  /**
   * Verifications and drills as their records on tape give them back (schema step 6): each row
   * keeps its id and every column through the tape file's JSON, the next new rows take the ids
   * after them (PostgreSQL's identity moved past them), and only rows without a record on tape
   * are pending.
   */
  static void recordedVerificationsAndDrills_keepTheirIds_andNewOnesFollow(CatalogLocation where) throws Exception {
    Catalog.VerificationRecord v = new Catalog.VerificationRecord(7, Instant.parse("2026-12-01T10:00:00.123Z"), 3, 2,
        "SHD001", 4, Instant.parse("2026-12-01T10:00:01.456Z"), Catalog.FAILED, 1048576, 1.333, "data/0000000000100000",
        "cartridge SHD001, tape file 4: chunk data/0000000000100000 is damaged");
    Catalog.DrillRecord d = new Catalog.DrillRecord(5, "db", null, null, -1, List.of(),
        Instant.parse("2026-12-01T11:00:00.001Z"), Instant.parse("2026-12-01T11:00:00.010Z"), Catalog.FAILED, "find",
        "find: no backup", -1, -1, 0, null, null, List.of(new Catalog.DrillStep("find", Catalog.FAILED, 0.000123,
            "no backup"), new Catalog.DrillStep("restore", "skipped", 0, null)));
    // through the tape file and back
    java.io.ByteArrayOutputStream tape = new java.io.ByteArrayOutputStream();
    new VerifyRecordFile(List.of(v), Instant.parse("2026-12-01T10:00:02Z")).write(tape, 10240);
    Catalog.VerificationRecord readV = VerifyRecordFile.read(new java.io.ByteArrayInputStream(tape.toByteArray()))
        .verifications().get(0);
    tape.reset();
    new DrillRecordFile(List.of(d), Instant.parse("2026-12-01T11:00:01Z")).write(tape, 10240);
    Catalog.DrillRecord readD = DrillRecordFile.read(new java.io.ByteArrayInputStream(tape.toByteArray())).drills()
        .get(0);
    assertEquals(v, readV);
    assertEquals(d, readD);
    try (Catalog c = Catalog.open(where)) {
      c.insertRecordedVerification(readV, new Catalog.RecordLocation("SHD001", 5));
      c.insertRecordedDrill(readD, new Catalog.RecordLocation("SHD001", 6));
      assertEquals(List.of(v), c.verifications());
      assertEquals(List.of(d), c.drills(null));
      assertEquals(java.util.Optional.of(new Catalog.RecordLocation("SHD001", 6)), c.drillRecordLocation(5));
      assertEquals(List.of(), c.verificationsWithoutRecord());
      long nextV = c.addVerification(v);
      long nextD = c.addDrill(d);
      assertEquals(8, nextV, "the next verification follows the rebuilt ones");
      assertEquals(6, nextD, "the next drill follows the rebuilt ones");
      assertEquals(List.of(nextV), c.verificationsWithoutRecord().stream().map(Catalog.VerificationRecord::id).toList());
      assertEquals(List.of(nextD), c.drillsWithoutRecord().stream().map(Catalog.DrillRecord::id).toList());
      c.setVerificationRecordLocation(List.of(nextV), new Catalog.RecordLocation("SHD002", 1));
      c.setDrillRecordLocation(List.of(nextD), new Catalog.RecordLocation("SHD002", 2));
      assertEquals(List.of(), c.verificationsWithoutRecord());
      assertEquals(List.of(), c.drillsWithoutRecord());
      assertEquals(java.util.Optional.of(new Catalog.RecordLocation("SHD002", 1)), c.verificationRecordLocation(8));
    }
  }

  private static long start(Catalog c, int n, JobOwner owner) throws IOException {
    return c.startJob(identity(n), "full", -1, -1, "pool", 65536, Instant.now(), owner);
  }

  private static SnapshotIdentity identity(int n) {
    return new SnapshotIdentity("db", "uuid-db", "s" + n, n, Instant.parse("2026-12-01T07:00:00Z"), 65536L);
  }

  /**
   * The child of {@link #twoProcessesMigrating_applyEachStepOnce}: connects, says READY, waits
   * for GO on stdin, migrates through the synthetic steps, says {@code DONE found=V}.
   */
  static final class MigrateChild {
    public static void main(String[] args) throws Exception {
      CatalogLocation where = CatalogLocation.parse(args[0]);
      int steps = Integer.parseInt(args[1]);
      try (Connection c = connect(where)) {
        System.out.println("READY");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        if (!"GO".equals(in.readLine())) {
          System.out.println("FAILED no GO");
          System.exit(1);
        }
        int found = SchemaMigrator.migrate(c, where.dialect(), syntheticSteps(steps), where.toString(),
            Clock.systemUTC());
        System.out.println("DONE found=" + found);
      } catch (Exception e) {
        System.out.println("FAILED " + e);
        System.exit(1);
      }
      System.out.flush();
    }
  }
}
