package dev.shade.offhost.agent;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * How the backup-complete report of one snapshot went.
 *
 * @param ok true when the agent ran every writer's backup-complete step without a failure
 * @param writers the agent's per-writer steps ({@code [{"writer", "ok", "ms"}]}); null when it failed
 * @param error why it failed (the agent's description, naming the writer), or null
 * @param previously when backup-complete had run for the snapshot before (the agent's record), or null
 */
public record BackupCompleteOutcome(boolean ok, JsonNode writers, String error, String previously) {}
