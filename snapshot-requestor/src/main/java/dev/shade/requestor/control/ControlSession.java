package dev.shade.requestor.control;

import java.util.Map;

/** The client connection a command runs for: where its progress events go. */
public interface ControlSession {
  /**
   * Sends an event to this client only, e.g. {@code PROGRESS} of the command it is waiting for.
   * Never fails: an event that cannot be written is dropped (the reply will fail too).
   */
  void event(String name, Map<String, ?> data);

  /** The user name of the peer process, from the socket's credentials (SO_PEERCRED). */
  String peerUser();
}
