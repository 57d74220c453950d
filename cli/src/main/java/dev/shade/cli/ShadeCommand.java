package dev.shade.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Function;
import java.util.stream.Stream;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** What every leaf command shares: its output streams, the terminal, opening volumes, JSON. */
abstract class ShadeCommand implements Callable<Integer> {
  /** Reads and writes the JSON documents of all commands. */
  static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** This command's model, injected by picocli: its streams, its name and the root command. */
  @Spec CommandSpec spec;

  PrintWriter out() {
    return spec.commandLine().getOut();
  }

  PrintWriter err() {
    return spec.commandLine().getErr();
  }

  Terminal terminal() {
    return ((Shade) spec.root().userObject()).terminal();
  }

  /** A progress display for long work named {@code label}, on stderr. */
  ProgressLine progress(String label) {
    return new ProgressLine(err(), label, terminal().interactive());
  }

  /** Arguments naming the volume in {@code dir}, for a command on that one volume. */
  static ObjectNode volumeArgs(Path dir) {
    return VolumeAccess.args().put("volume", VolumeAccess.ref(dir));
  }

  /**
   * Runs the export {@code command} to the sparse image {@code file} with a progress line, then
   * says what was written; {@code what} names the source for that line ("volume 'db'").
   */
  void exportImage(String command, ObjectNode args, Path dir, Path file, boolean force, boolean json,
      Function<JsonNode, String> what) throws IOException, CommandException {
    args.put("file", file.toAbsolutePath().toString()).put("force", force);
    JsonNode doc;
    try (ProgressLine progress = progress("export")) {
      doc = VolumeAccess.run(command, args, List.of(dir), progress);
    }
    if (json) {
      printJson(doc);
      return;
    }
    out().printf("Exported %s to %s: %s, of which %s data (the rest sparse), in %s.%n",
        what.apply(doc), file, Sizes.format(doc.get("size").asLong()), Sizes.format(doc.get("dataBytes").asLong()),
        ProgressLine.duration(doc.get("seconds").asDouble()));
    out().flush();
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

  /**
   * Opens the volume in {@code dir}, failing with a message that says what is there instead
   * when it is not a volume.
   */
  static Volume openVolume(Path dir) throws IOException {
    requireVolume(dir);
    return Volume.open(dir);
  }

  /**
   * Fails unless {@code dir} holds a volume, with a message that says what is there instead;
   * touches nothing.
   */
  static void requireVolume(Path dir) throws VolumeException {
    if (!Files.exists(dir)) {
      throw new VolumeException("volume directory does not exist: " + dir);
    }
    if (!Files.isDirectory(dir)) {
      throw new VolumeException("not a volume directory (it is a file): " + dir);
    }
    if (!Volume.isVolume(dir)) {
      throw new VolumeException("not a shade volume (no volume.properties): " + dir);
    }
  }

  /** True if {@code dir} is a directory without entries. */
  static boolean isEmptyDirectory(Path dir) throws IOException {
    try (Stream<Path> entries = Files.list(dir)) {
      return entries.findAny().isEmpty();
    }
  }

  /** Deletes everything under {@code root}, and {@code root} itself unless {@code keepRoot}. */
  static void deleteTree(Path root, boolean keepRoot) throws IOException {
    Directories.delete(root, keepRoot);
  }

  /**
   * Closes every volume and returns the first failure (later ones suppressed on it), or null;
   * the caller throws it or attaches it to a failure of its own.
   */
  static IOException closeAll(List<Volume> volumes) {
    IOException first = null;
    for (Volume v : volumes) {
      try {
        v.close();
      } catch (IOException | RuntimeException e) {
        if (first == null) {
          first = e instanceof IOException ? (IOException) e : new IOException(e.getMessage(), e);
        } else {
          first.addSuppressed(e);
        }
      }
    }
    return first;
  }
}
