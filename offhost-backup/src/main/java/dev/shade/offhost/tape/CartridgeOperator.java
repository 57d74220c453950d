package dev.shade.offhost.tape;

import java.io.IOException;

/**
 * The person who changes cartridges in a drive without a changer: a one-drive library asks them
 * for the cartridge a job needs and checks the label of what they load.
 *
 * <p>Implementations say whether they are thread-safe; a library calls its operator from the one
 * thread that uses it.
 */
public interface CartridgeOperator {
  /**
   * What a library asks for.
   *
   * @param device the drive's device, e.g. {@code /dev/nst0}
   * @param label the cartridge wanted, or null for a blank one (to be labelled into {@code pool})
   * @param pool the pool of the cartridge wanted, or the pool a blank one is labelled into
   * @param refused why the cartridge loaded last time was not taken (the drive was empty, or it
   *     held another cartridge), or null on the first request
   */
  record ChangeRequest(String device, String label, String pool, String refused) {
    /** What is wanted in words: {@code cartridge SHD002 (pool nightly)} or {@code a blank cartridge}. */
    public String wanted() {
      if (label == null) {
        return pool == null ? "a blank cartridge" : "a blank cartridge (to be labelled into pool " + pool + ")";
      }
      return "cartridge " + label + " (pool " + pool + ")";
    }

    /** The request as one line: {@code load cartridge SHD002 (pool nightly) into /dev/nst0}. */
    public String prompt() {
      return "load " + wanted() + " into " + device;
    }
  }

  /**
   * Asks for {@code request} and returns once the operator says the cartridge is in the drive
   * (the library then reads its label); throws {@link TapeException} when they decline.
   */
  void change(ChangeRequest request) throws IOException;

  /**
   * False when nobody can be asked (no terminal): the library then fails at once, naming the
   * cartridge it needs, without taking the one in the drive out.
   */
  default boolean present() {
    return true;
  }

  /** Nobody to ask: every change fails, naming the cartridge wanted. */
  static CartridgeOperator none() {
    return new CartridgeOperator() {
      @Override
      public void change(ChangeRequest request) throws TapeException {
        throw new TapeException(request.wanted() + " is needed in " + request.device()
            + ", and nobody can be asked to load it");
      }

      @Override
      public boolean present() {
        return false;
      }

      @Override
      public String toString() {
        return "no operator";
      }
    };
  }
}
