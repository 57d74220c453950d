package dev.shade.cli;

import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;

/**
 * {@code shade bench} in the product jar: the benchmarks are built into a jar of their own, and
 * this command says where they are.
 */
@Command(
    name = "bench",
    header = "Measure shade on this machine (in the bench jar, which bin/shade runs).",
    description = {
      "The benchmarks (shade bench cow, shade bench nbd) are not part of shade.jar: they are built "
          + "into bench/target/shade-bench.jar, and bin/shade runs that jar for 'shade bench ...', "
          + "building it when it is missing or older than the sources. See bench/README.md."
    },
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {"  bin/shade bench cow", "  java -jar bench/target/shade-bench.jar bench nbd --json"})
final class BenchStubCommand implements Callable<Integer> {
  /** Whatever followed {@code bench}: the benchmark the operator asked for. */
  @Unmatched List<String> args;

  @Override
  public Integer call() throws CommandException {
    throw new CommandException("the benchmarks are not in this jar: run 'bin/shade bench"
        + (args == null || args.isEmpty() ? "" : " " + String.join(" ", args))
        + "' from the source tree, which builds and runs bench/target/shade-bench.jar");
  }
}
