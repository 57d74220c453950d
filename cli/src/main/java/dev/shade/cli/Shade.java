package dev.shade.cli;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** The {@code shade} command: copy-on-write volumes and snapshots from the shell. */
@Command(
    name = "shade",
    header = "Copy-on-write block snapshots for database servers.",
    description = {
      "Manages shade volumes (an origin, a diff area of old block contents, and the snapshots "
          + "sharing it) and their snapshots, and serves them over NBD. Run 'shade demo' for a guided tour."
    },
    mixinStandardHelpOptions = true,
    versionProvider = Shade.Version.class,
    modelTransformer = CommandSetup.class,
    subcommands = {
      VolumeCommand.class,
      SnapshotCommand.class,
      RollbackCommand.class,
      ServeCommand.class,
      AgentCommand.class,
      ScheduleCommand.class,
      TapeCommand.class,
      BackupCommand.class,
      RestoreCommand.class,
      VerifyCommand.class,
      DrillCommand.class,
      CatalogCommand.class,
      BenchStubCommand.class,
      DemoCommand.class,
      CommandLine.HelpCommand.class
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade demo",
      "  shade volume create /var/lib/shade/db --size 10G",
      "  shade snapshot create /var/lib/shade/db --name nightly",
      "  shade snapshot list /var/lib/shade/db --json",
      "  shade rollback /var/lib/shade/db --to nightly --writer fs:/srv/pg",
      "  shade serve /var/lib/shade/db",
      "  shade agent --config /etc/shade/agent.json",
      "  shade schedule show --config /etc/shade/agent.json",
      "  shade tape library create /srv/vtl --slots 8 --capacity 10G"
    })
public final class Shade extends CommandGroup {
  /** Environment variable that, set to 1, prints stack traces of failures like --verbose. */
  static final String DEBUG_ENV = "SHADE_DEBUG";

  /** Where confirmations are asked and whether progress may redraw a line. */
  private final Terminal terminal;

  /** Where commands that print bytes rather than text ({@code shade tape cat}) write them. */
  private OutputStream binaryOut = new FileOutputStream(FileDescriptor.out);

  /** Whether --verbose was given anywhere on the command line. */
  private boolean verbose;

  /** A command that talks to the real terminal of this process, if it has one. */
  public Shade() {
    this(Terminal.system());
  }

  Shade(Terminal terminal) {
    this.terminal = terminal;
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new Shade()).execute(args));
  }

  /**
   * The {@code shade} command tree of this jar with {@code commands} (picocli command objects) in
   * place of the subcommands of the same names, every other subcommand kept in its place, and the
   * same failure handling and help sections throughout. Another jar that provides a command this
   * one only names, as the bench jar provides {@code shade bench}, runs its command line this way.
   */
  public static CommandLine commandLine(Object... commands) {
    CommandLine root = new CommandLine(new Shade());
    Map<String, Object> subcommands = new LinkedHashMap<>();
    root.getSubcommands().forEach((name, sub) -> subcommands.put(name, sub.getCommandSpec().userObject()));
    for (Object command : commands) {
      String name = new CommandLine(command).getCommandName();
      if (subcommands.put(name, command) == null) {
        throw new IllegalArgumentException("shade has no subcommand named " + name + " to replace");
      }
    }
    // Every subcommand is built again from its object and re-added in the original order, so that
    // --help lists them as the annotation does; a fresh model because adding one to the root gives
    // it the root's inherited options (--verbose), which a model that had them already would refuse.
    subcommands.keySet().forEach(root.getCommandSpec()::removeSubcommand);
    subcommands.forEach((name, command) -> root.addSubcommand(name, new CommandLine(command)));
    CommandSetup.configureHelp(root.getCommandSpec());
    return root;
  }

  @Option(
      names = {"-v", "--verbose"},
      scope = ScopeType.INHERIT,
      description = "Print stack traces of failures and log at debug level (also: SHADE_DEBUG=1).")
  void setVerbose(boolean verbose) {
    this.verbose = verbose;
    if (verbose) {
      // read by slf4j-simple when the first logger is made, which is after parsing
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "debug");
    }
  }

  /** True if failures should print their stack trace. */
  boolean debug() {
    return verbose || "1".equals(System.getenv(DEBUG_ENV));
  }

  Terminal terminal() {
    return terminal;
  }

  /** The raw standard output, for commands that print bytes; not closed by them. */
  OutputStream binaryOut() {
    return binaryOut;
  }

  /** Sends the bytes of binary commands to {@code out} instead of standard output (tests). */
  Shade binaryOut(OutputStream out) {
    this.binaryOut = out;
    return this;
  }

  /** The version from the jar manifest, or a note that this is a build from the source tree. */
  static final class Version implements IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Shade.class.getPackage().getImplementationVersion();
      return new String[] {"shade " + (v == null ? "(development build)" : v)};
    }
  }
}
