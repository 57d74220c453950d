package dev.shade.offhost.backup;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tests every catalog database must pass ({@link CatalogScenarios}), run by each database's
 * test class against a fresh, empty catalog of its own, which its {@code @BeforeEach} puts in
 * {@link #where}.
 */
abstract class CatalogContract {
  /** A directory of the test running now. */
  @TempDir Path tmp;
  /** The fresh catalog of the test running now. */
  CatalogLocation where;

  @Test
  void freshCatalog_recordsEachStepWithItsTime() throws Exception {
    CatalogScenarios.freshCatalog_recordsEachStepWithItsTime(where);
  }

  @Test
  void newerCatalog_isRefused() throws Exception {
    CatalogScenarios.newerCatalog_isRefused(where);
  }

  @Test
  void failingStep_isRolledBackWhole() throws Exception {
    CatalogScenarios.failingStep_isRolledBackWhole(where);
  }

  @Test
  void concurrentMigrations_applyEachStepOnce() throws Exception {
    CatalogScenarios.concurrentMigrations_applyEachStepOnce(where, 4, 12);
  }

  @Test
  void catalogsOpenedAtOnce_makeTheSchemaOnce() throws Exception {
    CatalogScenarios.catalogsOpenedAtOnce_makeTheSchemaOnce(where, 4);
  }

  @Test
  void twoProcessesMigrating_applyEachStepOnce() throws Exception {
    CatalogScenarios.twoProcessesMigrating_applyEachStepOnce(tmp, where, 12);
  }

  @Test
  void twoWriters_neverCollide() throws Exception {
    CatalogScenarios.twoWriters_neverCollide(where, 40);
  }

  @Test
  void interruptedJobs_onlyThisHostsAndLibrarysDeadOnes() throws Exception {
    CatalogScenarios.interruptedJobs_onlyThisHostsAndLibrarysDeadOnes(where);
  }

  @Test
  void recordedVerificationsAndDrills_keepTheirIds_andNewOnesFollow() throws Exception {
    CatalogScenarios.recordedVerificationsAndDrills_keepTheirIds_andNewOnesFollow(where);
  }
}
