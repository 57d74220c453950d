package dev.shade.cli;

import dev.shade.offhost.backup.CatalogLocation;
import dev.shade.offhost.tape.CartridgeOperator;
import dev.shade.offhost.tape.TapeException;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The {@code --device DEV} and {@code --no-prompt} options, the alternative to a virtual library
 * ({@code --library LIB}) for the commands that read or write tapes: one real st drive whose
 * cartridges an operator changes (a picocli mixin).
 *
 * <p>Not thread-safe: picocli fills it, then one command reads it.
 */
final class DeviceOption {
  /** Where a drive's catalog and state go unless told otherwise ({@code SHADE_STATE_DIR} overrides it). */
  static final Path DEFAULT_STATE_DIR = Path.of("/var/lib/shade");

  @Option(names = "--device", paramLabel = "DEV",
      description = "A Linux tape drive without a changer, by its no-rewind device (/dev/nst0), instead of a "
          + "virtual library. Its catalog is --catalog, else the SQLite file /var/lib/shade/catalog.db (created on "
          + "first use); the cartridges it has seen are remembered in /var/lib/shade/drives/DEVNAME.json "
          + "($SHADE_STATE_DIR replaces /var/lib/shade). When another cartridge is needed, the operator is asked on "
          + "the terminal to load it (its label is checked).")
  Path device;

  @Option(names = "--no-prompt",
      description = "With --device: never ask for a cartridge change; a job that needs a cartridge that is not in "
          + "the drive fails, naming it. Without a terminal this is always so.")
  boolean noPrompt;

  /** The directory of a drive's catalog and state. */
  static Path stateDir() {
    String env = System.getenv("SHADE_STATE_DIR");
    return env == null || env.isEmpty() ? DEFAULT_STATE_DIR : Path.of(env);
  }

  /** Fails with a usage error unless exactly one of {@code library} ({@code what} names it) and --device is given. */
  void requireOne(Path library, String what, ShadeCommand command) {
    if (library != null && device != null) {
      throw command.usage(what + " and --device are mutually exclusive: give one");
    }
    if (library == null && device == null) {
      throw command.usage("missing " + what + ": give the virtual tape library's directory, or --device DEV for"
          + " a tape drive");
    }
    if (noPrompt && device == null) {
      throw command.usage("--no-prompt goes with --device: a virtual library changes its cartridges itself");
    }
  }

  /** True when --device was given. */
  boolean given() {
    return device != null;
  }

  /** The state file of the drive. */
  Path stateFile() {
    return stateFile(device);
  }

  /** The state file of the drive {@code device}: STATE_DIR/drives/DEVNAME.json. */
  static Path stateFile(Path device) {
    return stateDir().resolve("drives").resolve(device.getFileName() + ".json");
  }

  /** Opens the drive {@code device} as a library without an operator: for commands that change no cartridge. */
  static TapeLibrary openWithoutOperator(Path device) throws IOException, CommandException {
    if (!Files.exists(device)) {
      throw new CommandException("tape device does not exist: " + device);
    }
    try {
      return TapeLibrary.openDevice(device, stateFile(device), CartridgeOperator.none());
    } catch (java.nio.file.AccessDeniedException e) {
      throw new CommandException("cannot write the tape drive's state in " + stateFile(device).getParent()
          + " (permission denied): run as root, or set SHADE_STATE_DIR to a directory of yours");
    }
  }

  /**
   * Opens the library: the virtual one in {@code library}, or the drive; a drive's operator is
   * the terminal unless --no-prompt or there is none.
   */
  TapeLibrary open(Path library, ShadeCommand command) throws IOException, CommandException {
    if (device == null) {
      return TapeCommand.open(library);
    }
    if (!Files.exists(device)) {
      throw new CommandException("tape device does not exist: " + device + " (is the st driver loaded? 'lsscsi -g'"
          + " and 'ls -l /dev/nst*' show the drives)");
    }
    Terminal terminal = Terminal.system();
    CartridgeOperator operator = noPrompt || !terminal.interactive() ? CartridgeOperator.none()
        : new TerminalOperator(terminal, command.err());
    try {
      return TapeLibrary.openDevice(device, stateFile(), operator);
    } catch (java.nio.file.AccessDeniedException e) {
      throw new CommandException("cannot write the tape drive's state in " + stateFile().getParent()
          + " (permission denied): run as root, or set SHADE_STATE_DIR to a directory of yours");
    }
  }

  /** The catalog: --catalog, else the library's own, else the drive's default file. */
  CatalogLocation catalog(Path library, CatalogOption option) throws IOException {
    if (device == null || option.given()) {
      return option.location(library);
    }
    Files.createDirectories(stateDir());
    return CatalogLocation.inLibrary(stateDir());
  }

  /** What names the library in output and in the catalog's job owners: LIB, or the device. */
  Path where(Path library) {
    return device != null ? device : library;
  }

  /** Asks on the terminal for cartridge changes. */
  static final class TerminalOperator implements CartridgeOperator {
    /** Where the prompt is read. */
    private final Terminal terminal;
    /** Where refusals are told. */
    private final PrintWriter err;

    TerminalOperator(Terminal terminal, PrintWriter err) {
      this.terminal = terminal;
      this.err = err;
    }

    @Override
    public void change(ChangeRequest request) throws TapeException {
      if (request.refused() != null) {
        err.println("shade: that cartridge is not the one wanted: " + request.refused());
        err.flush();
      }
      String answer = terminal.readLine("shade: " + request.prompt() + " and press Enter (q gives up): ");
      if (answer == null || answer.trim().equalsIgnoreCase("q")) {
        throw new TapeException("gave up waiting for " + request.wanted() + " in " + request.device());
      }
    }
  }
}
