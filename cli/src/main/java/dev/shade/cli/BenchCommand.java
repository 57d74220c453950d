package dev.shade.cli;

import dev.shade.cli.bench.CowBench;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code shade bench}: measurements of shade on this machine. */
@Command(
    name = "bench",
    header = "Measure shade on this machine.",
    mixinStandardHelpOptions = true,
    subcommands = {BenchCommand.Cow.class})
final class BenchCommand extends CommandGroup {
  /** {@code shade bench cow}. */
  @Command(
      name = "cow",
      header = "Measure the copy-on-write write path against plain file writes.",
      description = {
        "Writes the same data to a plain file and to a shade volume with one and with many "
            + "snapshots, and times snapshot creation under load, in a temporary directory under "
            + "/var/tmp (a real disk, not tmpfs). Takes a minute or two. Java system properties "
            + "shade.bench.dir, shade.bench.mib, shade.bench.rounds and shade.bench.creates "
            + "change the defaults (with bin/shade: SHADE_JAVA_OPTS=-Dshade.bench.dir=...)."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade bench cow", "  shade bench cow --json > cow.json"})
  static final class Cow extends ShadeCommand {
    @Option(names = "--json", description = "Print the results as one JSON object.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      Map<String, Object> results = CowBench.run(line -> {
        err().println("bench: " + line);
        err().flush();
      });
      if (json) {
        printJson(results);
        return ExitCodes.OK;
      }
      List<String[]> rows = new ArrayList<>();
      flatten("", results, rows);
      int width = rows.stream().mapToInt(r -> r[0].length()).max().orElse(0);
      for (String[] row : rows) {
        out().printf("%-" + width + "s  %s%n", row[0], row[1]);
      }
      out().flush();
      return ExitCodes.OK;
    }

    /** Turns nested maps into rows of dotted keys, e.g. {@code targets_met.rewrite_vs_raw}. */
    private static void flatten(String prefix, Map<?, ?> map, List<String[]> rows) {
      for (Map.Entry<?, ?> e : map.entrySet()) {
        String key = prefix + e.getKey();
        Object value = e.getValue();
        if (value instanceof Map<?, ?> nested) {
          flatten(key + ".", nested, rows);
        } else if (value instanceof Collection<?> list) {
          rows.add(new String[] {key, String.join(", ", list.stream().map(String::valueOf).toList())});
        } else {
          rows.add(new String[] {key, String.valueOf(value)});
        }
      }
    }
  }
}
