package dev.shade.requestor.control;

import java.util.Map;

/** The client connection a command runs for: where its progress events go. */
public interface ControlSession {
  /**
   * Sends an event to this client only, e.g. {@code PROGRESS} of the command it is waiting for.
   * Never fails: an event that cannot be written is dropped (the reply will fail too).
   */
  void event(String name, Map<String, ?> data);

  /**
   * Who the peer is: on the Unix socket the user name of the peer process, from the socket's
   * credentials (SO_PEERCRED); over TCP its address, preceded under TLS by its certificate's
   * subject ({@code "CN=backup1 at 10.0.0.2:40112"}).
   */
  String peerUser();
}
