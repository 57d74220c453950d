package dev.shade.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code shade bench}: measurements of shade on this machine. {@link ShadeBench} puts it in place
 * of the product jar's stub, under the product's root command and its failure handling.
 */
@Command(
    name = "bench",
    header = "Measure shade on this machine.",
    mixinStandardHelpOptions = true,
    subcommands = {BenchCommand.Cow.class, BenchCommand.Nbd.class})
public final class BenchCommand implements Callable<Integer> {
  /** Exit code of a command that did what was asked. */
  private static final int OK = 0;

  /** Writes the JSON documents of the benchmarks. */
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** This command's model, injected by picocli; names the subcommands. */
  @Spec CommandSpec spec;

  /** Run alone, it is a usage error naming the benchmarks. */
  @Override
  public Integer call() {
    throw new ParameterException(spec.commandLine(),
        "missing command: choose one of " + String.join(", ", spec.subcommands().keySet()));
  }

  /** What both benchmarks share: output streams, usage errors, the JSON document. */
  abstract static class Leaf implements Callable<Integer> {
    /** This command's model, injected by picocli: its streams and its name. */
    @Spec CommandSpec spec;

    PrintWriter out() {
      return spec.commandLine().getOut();
    }

    PrintWriter err() {
      return spec.commandLine().getErr();
    }

    /** A usage error (exit 2) naming what is wrong with the command line. */
    ParameterException usage(String message) {
      return new ParameterException(spec.commandLine(), message);
    }

    /** Prints {@code document} as the one JSON document of this command's standard output. */
    void printJson(Object document) {
      try {
        out().println(JSON.writeValueAsString(document));
      } catch (JsonProcessingException e) {
        throw new UncheckedIOException(e);
      }
      out().flush();
    }
  }
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
  static final class Cow extends Leaf {
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
        return OK;
      }
      List<String[]> rows = new ArrayList<>();
      flatten("", results, rows);
      int width = rows.stream().mapToInt(r -> r[0].length()).max().orElse(0);
      for (String[] row : rows) {
        out().printf("%-" + width + "s  %s%n", row[0], row[1]);
      }
      out().flush();
      return OK;
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

  /** {@code shade bench nbd}. */
  @Command(
      name = "nbd",
      header = "Measure shade's NBD server against nbdkit and qemu-nbd with fio.",
      description = {
        "Runs fio's nbd engine (iodepth 16) for --seconds per job: seqwrite 1 MiB, randwrite 4 KiB, "
            + "randread 4 KiB, seqread 1 MiB, against 1 GiB exports of nbdkit's file plugin, qemu-nbd on "
            + "a raw file and on the top of a chain of 8 qcow2 snapshots, and shade's server (in this "
            + "process, on a Unix socket) on a volume without snapshots, one with 8, and the oldest of "
            + "those snapshots (read jobs only). Targets run interleaved, --rounds times; the table "
            + "shows medians with min and max. A target whose tools are missing is skipped with the "
            + "reason. Everything lives in a temporary directory under /var/tmp, deleted at the end; "
            + "needs fio and about 10 GiB there. Java system properties shade.bench.dir, "
            + "shade.bench.nbd.mib and shade.bench.nbd.targets (comma-separated) change the defaults.",
        "See bench/nbd.md for the method."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade bench nbd",
        "  shade bench nbd --seconds 10 --rounds 3 --json > nbd.json",
        "  SHADE_JAVA_OPTS=-Dshade.bench.nbd.targets=shade_origin,qemu_nbd_raw bin/shade bench nbd"
      })
  static final class Nbd extends Leaf {
    @Option(names = "--json", description = "Print the results as one JSON object: {\"jobs\": {JOB: {\"shade_mibs\", "
        + "\"vs_qemu_nbd_raw\", \"vs_nbdkit_file\", \"snap8_vs_qcow2_chain8\", ..., \"targets\"}}, \"environment\"}.")
    boolean json;

    @Option(names = "--seconds", paramLabel = "N", defaultValue = "5", description = "How long each fio job runs.")
    int seconds;

    @Option(names = "--rounds", paramLabel = "N", defaultValue = "2",
        description = "How many times every job runs on every target, interleaved.")
    int rounds;

    @Override
    public Integer call() throws Exception {
      if (seconds < 1 || seconds > 3600) {
        throw usage("--seconds must be from 1 to 3600: " + seconds);
      }
      if (rounds < 1 || rounds > 100) {
        throw usage("--rounds must be from 1 to 100: " + rounds);
      }
      NbdBench.Settings settings;
      try {
        settings = NbdBench.Settings.of(seconds, rounds);
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      Map<String, Object> results = NbdBench.run(settings, line -> {
        err().println("bench: " + line);
        err().flush();
      });
      if (json) {
        printJson(results);
      } else {
        NbdBench.table(results).forEach(out()::println);
        out().flush();
      }
      return OK;
    }
  }
}
