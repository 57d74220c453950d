package dev.shade.cli;

import dev.shade.requestor.control.ControlErrors;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import picocli.CommandLine;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.IExitCodeExceptionMapper;
import picocli.CommandLine.IParameterExceptionHandler;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/** Maps exceptions to exit codes and reports every failure as one line on stderr. */
final class ExitCodes
    implements IExitCodeExceptionMapper, IExecutionExceptionHandler, IParameterExceptionHandler {
  /** The command did what was asked. */
  static final int OK = 0;
  /** The command was well formed but could not be carried out. */
  static final int FAILURE = 1;
  /** The command line was wrong: unknown option, bad size, invalid argument. */
  static final int USAGE = 2;

  @Override
  public int getExitCode(Throwable t) {
    return t instanceof ParameterException || t instanceof IllegalArgumentException ? USAGE : FAILURE;
  }

  @Override
  public int handleParseException(ParameterException ex, String[] args) {
    CommandLine cl = ex.getCommandLine();
    String name = cl.getCommandSpec().qualifiedName();
    report(cl, ex, name + ": " + oneLine(ex.getMessage()) + " (see '" + name + " --help')");
    return USAGE;
  }

  @Override
  public int handleExecutionException(Exception ex, CommandLine cl, ParseResult parseResult) {
    report(cl, ex, cl.getCommandSpec().qualifiedName() + ": " + describe(ex));
    return getExitCode(ex);
  }

  private static void report(CommandLine cl, Exception ex, String line) {
    PrintWriter err = cl.getErr();
    err.println(line);
    if (cl.getCommandSpec().root().userObject() instanceof Shade shade && shade.debug()) {
      ex.printStackTrace(err);
    }
    err.flush();
  }

  /** The message of {@code t} as one line an operator can act on. */
  static String describe(Throwable t) {
    Throwable cause = t instanceof UncheckedIOException && t.getCause() != null ? t.getCause() : t;
    String message = ControlErrors.describe(cause);
    boolean expected = cause instanceof java.io.IOException
        || cause instanceof IllegalArgumentException
        || cause instanceof CommandException;
    return expected ? message : message + " (unexpected " + cause.getClass().getSimpleName()
        + "; run with --verbose for the stack trace)";
  }

  private static String oneLine(String s) {
    return ControlErrors.oneLine(s);
  }
}
