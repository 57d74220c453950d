package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code shade demo}: a guided tour that runs the real commands and checks what each one proves. */
@Command(
    name = "demo",
    header = "A short guided tour: volume, snapshot, diff, export, snapshot set, revert.",
    description = {
      "Runs real shade commands on small volumes in a temporary directory, prints each command "
          + "and its output, and checks what it proves (by SHA-256 of exported images and by the "
          + "changed-block ranges). Exits 0 only if every check holds. Takes a few seconds."
    },
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {"  shade demo", "  shade demo --dir /var/tmp/shade-tour --keep"})
final class DemoCommand extends ShadeCommand {
  /*
   * The tour writes 4 MiB of generated text "database pages" (8 KiB each) into a 64 MiB volume,
   * snapshots it, then overwrites 32 pages at 1 MiB and one page at 3 MiB + 8 KiB. With 64 KiB
   * copy-on-write blocks that touches exactly blocks [1 MiB, 1.25 MiB) and [3 MiB, 3 MiB + 64 KiB),
   * which is what `snapshot diff` must report. The expected image of s1 is the generated data
   * followed by zeros up to 64 MiB; its SHA-256 is computed without reading the volume, so the
   * exported snapshot and the reverted origin are compared against an independent truth.
   */

  private static final int PAGE = 8192;
  private static final long MIB = 1L << 20;
  private static final long DB_SIZE = 64 * MIB;
  private static final int DB_PAGES = 512;
  private static final long UPDATE_OFFSET = MIB;
  private static final int UPDATE_PAGES = 32;
  private static final long SINGLE_OFFSET = 3 * MIB + PAGE;
  private static final String[] TABLES = {"accounts", "orders", "invoices", "customers", "stock"};
  private static final String[] WORDS = {"alpha", "bravo", "carbon", "delta", "ember", "fjord",
      "garnet", "harbor", "indigo", "juniper", "kernel", "lumen", "marble", "nectar", "onyx", "pixel"};

  @Option(names = "--dir", paramLabel = "DIR",
      description = "Work in DIR (missing or empty) instead of a new temporary directory.")
  Path dir;

  @Option(names = "--keep", description = "Keep the work directory and its volumes afterwards.")
  boolean keep;

  /** The directory the tour works in. */
  private Path work;
  /** Checks that held so far. */
  private int passed;
  /** Descriptions of the checks that did not hold. */
  private final List<String> failures = new ArrayList<>();

  @Override
  public Integer call() throws Exception {
    boolean ownDir = dir == null || !Files.exists(dir);
    if (dir == null) {
      work = Files.createTempDirectory("shade-demo-");
    } else {
      checkEmptyOrMissing(dir);
      work = Files.createDirectories(dir);
    }
    long start = System.nanoTime();
    try {
      tour();
    } finally {
      if (keep) {
        out().printf("%nKept the work directory: %s%n", work);
      } else {
        deleteTree(work, !ownDir);
      }
    }
    if (!failures.isEmpty()) {
      throw new CommandException(failures.size() + " of " + (passed + failures.size())
          + " checks did not hold: " + String.join("; ", failures));
    }
    out().printf("%nAll %d checks held; the tour took %s. Next: shade --help, or docs/cli.md.%n", passed,
        ProgressLine.duration(secondsSince(start)));
    out().flush();
    return ExitCodes.OK;
  }

  private void tour() throws Exception {
    out().printf("shade keeps cheap point-in-time copies (snapshots) of the volumes databases live on:%n"
        + "a write first copies the old contents of its block aside, once, so every snapshot keeps%n"
        + "reading what it held. This tour runs real shade commands in %s%n", work);

    step(1, "Create a 64 MiB volume 'db' (an origin file, a diff area, metadata).");
    run("volume", "create", "@db", "--size", "64M");

    step(2, "Fill it with 4 MiB of generated database pages, written through the copy-on-write path.");
    byte[] pages = pages(1, 0, DB_PAGES);
    Files.write(work.resolve("pages.bin"), pages);
    byte[] s1Hash = sha256(pages, DB_SIZE);
    run("volume", "import", "@db", "@pages.bin");

    step(3, "Take snapshot s1. It copies no data: creation is constant time.");
    run("snapshot", "create", "@db", "--name", "s1");

    step(4, "Overwrite 32 pages at 1 MiB and one page at 3 MiB + 8 KiB (the database keeps working).");
    Files.write(work.resolve("update.bin"), pages(2, (int) (UPDATE_OFFSET / PAGE), UPDATE_PAGES));
    Files.write(work.resolve("page.bin"), pages(3, (int) (SINGLE_OFFSET / PAGE), 1));
    run("volume", "import", "@db", "@update.bin", "--offset", "1M");
    run("volume", "import", "@db", "@page.bin", "--offset", Long.toString(SINGLE_OFFSET));

    step(5, "Ask which blocks changed since s1: answered from the copy-on-write tables, no data read.");
    run("snapshot", "diff", "@db", "s1");
    JsonNode diff = json(quiet("snapshot", "diff", "@db", "s1", "--json"));
    check("[1 MiB, 1.25 MiB) and [3 MiB, 3 MiB + 64 KiB) changed, nothing else (whole 64 KiB blocks)",
        diff.path("changedBytes").asLong() == 5 * 65536
            && rangesAre(diff.path("ranges"), UPDATE_OFFSET, UPDATE_PAGES * (long) PAGE, 3 * MIB, 65536),
        "diff reported " + diff);

    step(6, "Export s1 as a plain image and compare it with the data as it was before the overwrite.");
    run("snapshot", "export", "@db", "s1", "@s1.img");
    check("s1 still holds exactly the data at snapshot time (SHA-256 " + hex(s1Hash).substring(0, 16) + "...)",
        MessageDigest.isEqual(s1Hash, sha256(work.resolve("s1.img"))),
        "SHA-256 of s1.img differs from the data at snapshot time");

    step(7, "Create a second volume 'wal' and take one snapshot set over both, at the same instant.");
    run("volume", "create", "@wal", "--size", "16M");
    Files.write(work.resolve("wal.bin"), pages(4, 0, 128));
    run("volume", "import", "@wal", "@wal.bin");
    run("snapshot", "create", "@db", "@wal", "--name", "set1");
    JsonNode dbSet = find(json(quiet("snapshot", "list", "@db", "--json")), "set1");
    JsonNode walSet = find(json(quiet("snapshot", "list", "@wal", "--json")), "set1");
    check("both snapshots of the set share one set id",
        dbSet != null && walSet != null && !dbSet.path("setId").isNull()
            && dbSet.path("setId").equals(walSet.path("setId")),
        "set members: db " + dbSet + ", wal " + walSet);

    step(8, "Revert 'db' to s1. Its member of the set is newer than s1, so the revert deletes it (and says so first).");
    run("volume", "revert", "@db", "s1", "--yes");
    run("volume", "export", "@db", "@after.img");
    check("after the revert the origin equals s1 byte for byte",
        MessageDigest.isEqual(s1Hash, sha256(work.resolve("after.img"))),
        "SHA-256 of the reverted origin differs from s1");
    JsonNode left = json(quiet("snapshot", "list", "@db", "--json"));
    check("only s1 is left on 'db', and 'wal' keeps its set member",
        left.size() == 1 && find(left, "s1") != null
            && find(json(quiet("snapshot", "list", "@wal", "--json")), "set1") != null,
        "snapshots left on db: " + left);
  }

  private void step(int n, String what) {
    out().printf("%n%d. %s%n", n, what);
    out().flush();
  }

  private void check(String proves, boolean holds, String otherwise) {
    if (holds) {
      passed++;
      out().printf("   [ok] %s%n", proves);
    } else {
      failures.add(otherwise);
      out().printf("   [FAILED] %s: %s%n", proves, otherwise);
    }
    out().flush();
  }

  /** Runs a shade command shown as typed, with its output indented; fails the tour if it fails. */
  private void run(String... args) throws CommandException {
    out().printf("   $ shade %s%n", String.join(" ", display(args)));
    long start = System.nanoTime();
    String output = quiet(args);
    String prefix = work + "/";
    output.lines().forEach(line -> out().printf("     %s%n", line.replace(prefix, "")));
    out().printf("     (%s)%n", ProgressLine.duration(secondsSince(start)));
    out().flush();
  }

  /** Runs a shade command and returns its standard output; fails the tour if it fails. */
  private String quiet(String... args) throws CommandException {
    StringWriter stdout = new StringWriter();
    StringWriter stderr = new StringWriter();
    CommandLine cl = new CommandLine(new Shade(terminal()));
    cl.setOut(new PrintWriter(stdout, true));
    cl.setErr(new PrintWriter(stderr, true));
    int code = cl.execute(resolve(args));
    if (code != ExitCodes.OK) {
      String why = stderr.toString().lines().filter(l -> !l.isBlank()).reduce((a, b) -> b).orElse("no message");
      throw new CommandException("demo step 'shade " + String.join(" ", display(args)) + "' failed (exit "
          + code + "): " + why);
    }
    return stdout.toString();
  }

  /** Arguments with {@code @name} turned into paths inside the work directory. */
  private String[] resolve(String[] args) {
    return Stream.of(args).map(a -> a.startsWith("@") ? work.resolve(a.substring(1)).toString() : a)
        .toArray(String[]::new);
  }

  private static String[] display(String[] args) {
    return Stream.of(args).map(a -> a.startsWith("@") ? a.substring(1) : a).toArray(String[]::new);
  }

  private static JsonNode json(String text) throws CommandException {
    try {
      return JSON.readTree(text);
    } catch (IOException e) {
      throw new CommandException("demo could not parse JSON output: " + e.getMessage());
    }
  }

  private static JsonNode find(JsonNode snapshots, String name) {
    for (JsonNode s : snapshots) {
      if (name.equals(s.path("name").asText())) {
        return s;
      }
    }
    return null;
  }

  private static boolean rangesAre(JsonNode ranges, long... offsetLength) {
    if (ranges.size() * 2 != offsetLength.length) {
      return false;
    }
    for (int i = 0; i < ranges.size(); i++) {
      if (ranges.get(i).path("offset").asLong() != offsetLength[2 * i]
          || ranges.get(i).path("length").asLong() != offsetLength[2 * i + 1]) {
        return false;
      }
    }
    return true;
  }

  /**
   * {@code count} pages of text that look like database pages, numbered from {@code first};
   * the same seed gives the same bytes.
   */
  static byte[] pages(long seed, int first, int count) {
    Random random = new Random(seed);
    byte[] out = new byte[count * PAGE];
    for (int p = 0; p < count; p++) {
      StringBuilder sb = new StringBuilder(PAGE + 128);
      sb.append(String.format(Locale.ROOT, "-- page %06d  lsn %010d  table %s --%n", first + p,
          random.nextInt(1 << 30), TABLES[random.nextInt(TABLES.length)]));
      for (int row = 0; sb.length() < PAGE; row++) {
        sb.append(String.format(Locale.ROOT, "row %04d | %-8s %-8s | balance %9d.%02d%n", row,
            WORDS[random.nextInt(WORDS.length)], WORDS[random.nextInt(WORDS.length)],
            random.nextInt(10_000_000), random.nextInt(100)));
      }
      byte[] page = sb.toString().getBytes(StandardCharsets.US_ASCII);
      System.arraycopy(page, 0, out, p * PAGE, PAGE);
    }
    return out;
  }

  /** SHA-256 of {@code data} followed by zeros up to {@code length} bytes: a fresh volume's image. */
  private static byte[] sha256(byte[] data, long length) {
    MessageDigest md = sha256();
    md.update(data);
    byte[] zeros = new byte[1 << 20];
    for (long left = length - data.length; left > 0; left -= zeros.length) {
      md.update(zeros, 0, (int) Math.min(zeros.length, left));
    }
    return md.digest();
  }

  private static byte[] sha256(Path file) throws IOException {
    MessageDigest md = sha256();
    byte[] buf = new byte[1 << 20];
    try (InputStream in = Files.newInputStream(file)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return md.digest();
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }

  private static String hex(byte[] bytes) {
    return HexFormat.of().formatHex(bytes);
  }

  private static double secondsSince(long startNanos) {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  private static void checkEmptyOrMissing(Path dir) throws IOException, CommandException {
    if (Files.exists(dir) && !isEmptyDirectory(dir)) {
      throw new CommandException("--dir must be missing or an empty directory: " + dir);
    }
  }
}
