package dev.shade.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.util.Map;

/** Runs the copy-on-write benchmark alone: progress on stderr, one JSON object on stdout. */
public final class CowBenchMain {
  private CowBenchMain() {}

  public static void main(String[] args) throws IOException {
    Map<String, Object> result = CowBench.run(line -> System.err.println("[bench] " + line));
    System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
        .writeValueAsString(result));
  }
}
