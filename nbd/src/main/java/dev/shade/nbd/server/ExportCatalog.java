package dev.shade.nbd.server;

import java.io.IOException;
import java.util.List;

/**
 * What an {@link NbdServer} serves: the exports it finds by name and lists, asked afresh on every
 * handshake, so exports may come and go while the server runs.
 *
 * <p>Every implementation must:
 *
 * <ul>
 *   <li>be safe for concurrent calls: each client negotiates on its own thread;
 *   <li>answer quickly and without blocking on clients, since a handshake waits for it;
 *   <li>when {@code writable} is false, hand out only exports whose {@link NbdExport#readOnly()}
 *       is true (the peer may not write: it is remote and remote writes are not allowed);
 *   <li>list under {@link #list} only names that {@link #find} finds.
 * </ul>
 *
 * <p>The empty name is the protocol's default export; a catalog decides what it means, or finds
 * nothing for it.
 */
public interface ExportCatalog {
  /** One entry of {@code NBD_OPT_LIST}: an export's canonical name and its description. */
  record Entry(String name, String description) {
    public Entry {
      if (name == null || description == null) {
        throw new IllegalArgumentException("an export entry needs a name and a description (possibly empty)");
      }
    }
  }

  /**
   * The export named {@code name} for a peer that may ({@code writable}) or may not write, or null
   * when there is none. The caller closes what it gets.
   */
  NbdExport find(String name, boolean writable) throws IOException;

  /** The exports a client may attach to, for {@code NBD_OPT_LIST}, in the order to list them. */
  List<Entry> list(boolean writable) throws IOException;
}
