package dev.shade.requestor.control;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Carries out the commands a {@link ControlServer} receives.
 *
 * <p>Implementations must be thread-safe: each client has its own thread, and commands of
 * different clients run at the same time.
 */
public interface ControlHandler {
  /**
   * Runs {@code command} with {@code arguments} (an object, never null) and returns what becomes
   * the {@code "return"} member of the reply: something Jackson can write (maps, lists, records,
   * strings, numbers), or null for an empty object. A {@link ControlException} becomes an error
   * reply with its class; any other exception becomes an error whose class the server derives
   * from its type (see {@link ControlServer}). Progress of long work goes to {@code session}.
   */
  Object execute(String command, JsonNode arguments, ControlSession session) throws Exception;
}
