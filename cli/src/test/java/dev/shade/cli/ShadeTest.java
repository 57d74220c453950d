package dev.shade.cli;

import static dev.shade.cli.VolumeCommandTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ShadeTest {
  @TempDir Path tmp;

  @Test
  void help_everyCommandHasHeaderExitCodesAndExamples() {
    List<CommandLine> all = new ArrayList<>();
    collect(new CommandLine(new Shade()), all);
    assertTrue(all.size() >= 15, "commands found: " + all.size());
    for (CommandLine cl : all) {
      String name = cl.getCommandSpec().qualifiedName();
      if (name.endsWith(" help")) {
        continue; // picocli's own help command
      }
      StringWriter usage = new StringWriter();
      cl.usage(new PrintWriter(usage));
      String text = usage.toString();
      assertEquals(1, cl.getCommandSpec().usageMessage().header().length, name + " has a one-line header");
      assertTrue(text.contains("Exit codes:") && text.contains("2   Usage error"), name + ":\n" + text);
      boolean group = !cl.getSubcommands().isEmpty();
      assertTrue(group || text.contains("Examples:"), name + " has examples:\n" + text);
    }
  }

  private static void collect(CommandLine cl, List<CommandLine> all) {
    all.add(cl);
    cl.getSubcommands().values().stream().distinct().forEach(sub -> collect(sub, all));
  }

  @Test
  void help_showsDefaults() {
    Cli.Result r = Cli.run("volume", "create", "--help").ok();
    assertTrue(r.out().contains("Default: 64K"), r.out());
  }

  @Test
  void noCommand_isUsageErrorOnOneLine() {
    assertFails(Cli.run(), ExitCodes.USAGE, "missing command: choose one of volume, snapshot");
    assertFails(Cli.run("snapshot"), ExitCodes.USAGE, "choose one of create, list, delete, export, diff");
  }

  @Test
  void unknownOptionOrCommand_isUsageErrorOnOneLine() {
    assertFails(Cli.run("volume", "info", tmp, "--bogus"), ExitCodes.USAGE, "Unknown option: '--bogus'");
    assertFails(Cli.run("frobnicate"), ExitCodes.USAGE, "frobnicate");
    assertFails(Cli.run("volume", "info"), ExitCodes.USAGE, "DIR");
  }

  @Test
  void version_printsTheVersion() {
    assertTrue(Cli.run("--version").ok().out().startsWith("shade "));
  }

  @Test
  void verbose_addsTheStackTraceToTheFailureLine() {
    Cli.Result r = Cli.run("volume", "info", tmp.resolve("nope"), "--verbose");
    assertEquals(ExitCodes.FAILURE, r.code());
    assertTrue(r.errLines().get(0).startsWith("shade volume info: volume directory does not exist"), r::toString);
    assertTrue(r.err().contains("\tat dev.shade.cli."), "stack trace follows: " + r);
  }

  @Test
  void describe_nioExceptionsBecomeSentences() {
    assertEquals("no such file or directory: /x",
        ExitCodes.describe(new java.nio.file.NoSuchFileException("/x")));
    assertEquals("permission denied: /x", ExitCodes.describe(new java.nio.file.AccessDeniedException("/x")));
    assertEquals("a; b", ExitCodes.describe(new java.io.IOException("a\n  b")));
    String npe = ExitCodes.describe(new NullPointerException());
    assertTrue(npe.startsWith("NullPointerException") && npe.contains("--verbose"), npe);
    assertFalse(ExitCodes.describe(new java.io.IOException("disk")).contains("--verbose"));
  }
}
