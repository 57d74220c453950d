package dev.shade.requestor.agent;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.requestor.control.ControlException;
import dev.shade.requestor.control.ControlHandler;
import dev.shade.requestor.control.ControlSession;
import java.util.List;

/**
 * The commands a backup server on another host may run through the remote API: the read-only
 * ones it needs to find and describe a snapshot, and backup-complete; every other command is
 * {@code PermissionDenied}.
 *
 * <p>Thread-safe when the handler it forwards to is.
 */
final class RemoteCommands implements ControlHandler {
  /*
   * Why a list that is allowed and not one that is refused: a command added to the agent later
   * stays local until someone decides a backup server needs it. Nothing here creates, deletes,
   * reverts, imports, exports (an export writes a file on the production host), attaches or
   * stops; backup-complete only runs the writers' release steps of a snapshot that exists,
   * which is what a backup server is there to trigger.
   */

  /** What remote clients may run, in the order query-commands would list them. */
  static final List<String> ALLOWED = List.of("query-version", "query-volumes", "volume-info", "snapshot-list",
      "snapshot-show", "snapshot-diff", "snapshot-backup-complete");

  /** The agent's full command set. */
  private final ControlHandler local;

  RemoteCommands(ControlHandler local) {
    this.local = local;
  }

  @Override
  public Object execute(String command, JsonNode arguments, ControlSession session) throws Exception {
    if (!ALLOWED.contains(command)) {
      throw new ControlException(ControlException.PERMISSION_DENIED, "command " + command
          + " is not open to remote clients (" + session.peerUser() + "); they may run " + String.join(", ", ALLOWED)
          + ". Run it on the production host, through the agent's control socket");
    }
    return local.execute(command, arguments, session);
  }
}
