package dev.shade.cli;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;
import picocli.CommandLine;
import picocli.CommandLine.IModelTransformer;
import picocli.CommandLine.Model.CommandSpec;

/** Gives every command of the tree the same failure handling and the same help sections. */
final class CommandSetup implements IModelTransformer {
  /*
   * picocli applies the root command's model transformer inside the CommandLine constructor,
   * after the model has its CommandLine, so `new CommandLine(new Shade())` alone yields a fully
   * configured tree: the entry point stays one line and tests build it the same way. Handlers
   * set on the root CommandLine propagate to every subcommand.
   */

  /** Exit codes in the order --help lists them. */
  private static final Map<String, String> EXIT_CODES = Collections.unmodifiableMap(new TreeMap<>(Map.of(
      "0", "Success.",
      "1", "Failure: missing volume or snapshot, file too large, I/O error, refused revert.",
      "2", "Usage error: unknown option, bad or negative size, invalid argument.")));

  @Override
  public CommandSpec transform(CommandSpec spec) {
    CommandLine commandLine = spec.commandLine();
    if (commandLine != null && spec.parent() == null) {
      ExitCodes handler = new ExitCodes();
      commandLine.setExitCodeExceptionMapper(handler);
      commandLine.setExecutionExceptionHandler(handler);
      commandLine.setParameterExceptionHandler(handler);
      configureHelp(spec);
    }
    return spec;
  }

  /** Shows defaults and the exit codes in the help of {@code spec} and of all its subcommands. */
  static void configureHelp(CommandSpec spec) {
    spec.usageMessage()
        .showDefaultValues(true)
        .exitCodeListHeading("%nExit codes:%n")
        .exitCodeList(EXIT_CODES);
    for (CommandLine sub : spec.subcommands().values()) {
      configureHelp(sub.getCommandSpec());
    }
  }
}
