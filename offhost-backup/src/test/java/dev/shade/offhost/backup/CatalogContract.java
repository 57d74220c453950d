package dev.shade.offhost.backup;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The tests every catalog database must pass ({@link CatalogScenarios}), run by each database's
 * test class against a fresh, empty catalog of its own.
 */
interface CatalogContract {
  /** The fresh catalog of the test running now. */
  CatalogLocation where();

  /** A directory of the test running now, for the files of child processes. */
  Path workDir();

  @Test
  default void freshCatalog_recordsEachStepWithItsTime() throws Exception {
    CatalogScenarios.freshCatalog_recordsEachStepWithItsTime(where());
  }

  @Test
  default void newerCatalog_isRefused() throws Exception {
    CatalogScenarios.newerCatalog_isRefused(where());
  }

  @Test
  default void failingStep_isRolledBackWhole() throws Exception {
    CatalogScenarios.failingStep_isRolledBackWhole(where());
  }

  @Test
  default void concurrentMigrations_applyEachStepOnce() throws Exception {
    CatalogScenarios.concurrentMigrations_applyEachStepOnce(where(), 4, 12);
  }

  @Test
  default void catalogsOpenedAtOnce_makeTheSchemaOnce() throws Exception {
    CatalogScenarios.catalogsOpenedAtOnce_makeTheSchemaOnce(where(), 4);
  }

  @Test
  default void twoProcessesMigrating_applyEachStepOnce() throws Exception {
    CatalogScenarios.twoProcessesMigrating_applyEachStepOnce(workDir(), where(), 12);
  }

  @Test
  default void twoWriters_neverCollide() throws Exception {
    CatalogScenarios.twoWriters_neverCollide(where(), 40);
  }

  @Test
  default void interruptedJobs_onlyThisHostsAndLibrarysDeadOnes() throws Exception {
    CatalogScenarios.interruptedJobs_onlyThisHostsAndLibrarysDeadOnes(where());
  }

  @Test
  default void recordedVerificationsAndDrills_keepTheirIds_andNewOnesFollow() throws Exception {
    CatalogScenarios.recordedVerificationsAndDrills_keepTheirIds_andNewOnesFollow(where());
  }
}
