package dev.shade.cli;

import static dev.shade.cli.VolumeCommandTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.offhost.tape.CartridgeOperator;
import dev.shade.offhost.tape.TapeException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code --library LIB} or {@code --device DEV}: exactly one, on every command that uses tapes. */
class DeviceOptionTest {
  @TempDir static Path tmp;

  /** Each command's arguments without --library or --device. */
  static Stream<List<String>> commands() {
    return Stream.of(
        List.of("backup", "run", "--source", "nbd://localhost:1/db@s"),
        List.of("restore", "--volume", "db", "--snapshot", "s", "--to", tmp.resolve("out.img").toString()),
        List.of("verify"),
        List.of("catalog", "rebuild"),
        List.of("drill", "db"));
  }

  @ParameterizedTest
  @MethodSource("commands")
  void neither_isAUsageErrorNamingBoth(List<String> command) {
    assertFails(Cli.run(command.toArray()), ExitCodes.USAGE, "missing --library: give the virtual tape library's"
        + " directory, or --device DEV for a tape drive");
  }

  @ParameterizedTest
  @MethodSource("commands")
  void both_isAUsageError(List<String> command) {
    List<String> args = new ArrayList<>(command);
    args.addAll(List.of("--library", tmp.resolve("vtl").toString(), "--device", "/dev/nst0"));
    assertFails(Cli.run(args.toArray()), ExitCodes.USAGE, "--library and --device are mutually exclusive: give one");
  }

  @ParameterizedTest
  @MethodSource("commands")
  void noPromptWithoutDevice_isAUsageError(List<String> command) {
    List<String> args = new ArrayList<>(command);
    args.addAll(List.of("--library", tmp.resolve("vtl").toString(), "--no-prompt"));
    assertFails(Cli.run(args.toArray()), ExitCodes.USAGE, "--no-prompt goes with --device");
  }

  @ParameterizedTest
  @MethodSource("commands")
  void aDeviceThatDoesNotExist_failsNamingIt(List<String> command) {
    List<String> args = new ArrayList<>(command);
    args.addAll(List.of("--device", tmp.resolve("nst7").toString(), "--no-prompt"));
    assertFails(Cli.run(args.toArray()), ExitCodes.FAILURE, "tape device does not exist: " + tmp.resolve("nst7"));
  }

  @Test
  void tapeCommands_takeLibOrDevice() {
    assertFails(Cli.run("tape", "list"), ExitCodes.USAGE, "missing LIB: give the library's directory, or --device");
    assertFails(Cli.run("tape", "list", tmp.resolve("vtl"), "--device", "/dev/nst0"), ExitCodes.USAGE,
        "LIB and --device are mutually exclusive");
    assertFails(Cli.run("tape", "label", "--label", "A", "--pool", "p"), ExitCodes.USAGE, "missing LIB");
    assertFails(Cli.run("tape", "label", tmp.resolve("vtl"), "--device", "/dev/nst0", "--label", "A", "--pool", "p"),
        ExitCodes.USAGE, "with --device give no LIB or SLOT");
    assertFails(Cli.run("tape", "label", "--device", "/dev/nst0", "--all-blank", "--label", "A", "--pool", "p"),
        ExitCodes.USAGE, "--all-blank goes with a library");
    assertFails(Cli.run("tape", "label", "--device", tmp.resolve("nst8"), "--label", "A", "--pool", "p"),
        ExitCodes.FAILURE, "tape device does not exist");
    assertFails(Cli.run("catalog", "rebuild", "--library", tmp.resolve("vtl"), "--catalog", "jdbc:sqlite:/tmp/x.db"),
        ExitCodes.USAGE, "--catalog goes with --device");
  }

  @Test
  void terminalOperator_promptsNamingTheCartridge_andGivesUpOnQOrEof() throws Exception {
    Cli.ScriptedTerminal terminal = new Cli.ScriptedTerminal("", "q");
    StringWriter err = new StringWriter();
    CartridgeOperator op = new DeviceOption.TerminalOperator(terminal, new PrintWriter(err, true));
    op.change(new CartridgeOperator.ChangeRequest("/dev/nst0", "SHADE-0002", "nightly", null));
    assertEquals(List.of("shade: load cartridge SHADE-0002 (pool nightly) into /dev/nst0 and press Enter (q gives up): "),
        terminal.prompts);
    TapeException e = assertThrows(TapeException.class, () -> op.change(new CartridgeOperator.ChangeRequest(
        "/dev/nst0", "SHADE-0002", "nightly", "the drive holds cartridge SHADE-0003 (pool nightly)")));
    assertTrue(err.toString().contains("that cartridge is not the one wanted: the drive holds cartridge SHADE-0003"),
        err::toString);
    assertTrue(e.getMessage().contains("gave up waiting for cartridge SHADE-0002 (pool nightly) in /dev/nst0"),
        e.getMessage());
    assertThrows(TapeException.class, () -> op.change(new CartridgeOperator.ChangeRequest("/dev/nst0", null, "nightly",
        null)), "EOF gives up");
  }
}
