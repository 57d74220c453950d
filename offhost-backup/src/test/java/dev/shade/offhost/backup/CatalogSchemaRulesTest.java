package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every schema step of {@link Catalog} follows the rules of its class comment, so that one text
 * serves SQLite and PostgreSQL (the SQLite and PostgreSQL tests then apply them all to both).
 */
class CatalogSchemaRulesTest {
  /** Words PostgreSQL reserves that are easily taken for column names. */
  private static final Set<String> RESERVED = Set.of("offset", "order", "user", "limit", "group", "end", "desc",
      "asc", "column", "check", "default", "table", "window", "analyse", "analyze", "current_date", "current_time",
      "current_user", "session_user", "only", "to", "from", "where", "select", "all", "any", "case", "do", "else",
      "fetch", "for", "grant", "having", "in", "into", "leading", "not", "null", "on", "or", "primary", "some",
      "then", "union", "unique", "using", "when", "with", "array", "both", "cast", "collate", "constraint", "create",
      "distinct", "except", "false", "true", "foreign", "initially", "intersect", "lateral", "localtime",
      "placing", "references", "returning", "symmetric", "trailing", "variadic");
  /** A column definition: its name (group 1, possibly quoted) before its type. */
  private static final Pattern COLUMN = Pattern.compile("[(,]\\s*(\"?\\w+\"?)\\s+(INTEGER|TEXT|REAL|BLOB|\\{\\{id\\}\\})");

  static IntStream steps() {
    return IntStream.rangeClosed(1, Catalog.migrations().size());
  }

  @ParameterizedTest(name = "step {0}")
  @MethodSource("steps")
  void step_isPortable(int version) {
    String sql = Catalog.migrations().get(version - 1);
    assertFalse(sql.contains("INTEGER PRIMARY KEY"), "step " + version + ": a generated id is 'id {{id}}'");
    assertFalse(sql.toUpperCase().contains("AUTOINCREMENT"), "step " + version + ": no AUTOINCREMENT");
    assertFalse(sql.toUpperCase().contains("PRAGMA"), "step " + version + ": no PRAGMA");
    assertFalse(Pattern.compile("\\b(integer|real|blob|text)\\b").matcher(sql.replaceAll("\"[^\"]*\"|'[^']*'", ""))
        .find(), "step " + version + ": type names in capitals, as the translation expects");
    List<String> unquoted = new ArrayList<>();
    Matcher m = COLUMN.matcher(sql);
    while (m.find()) {
      String name = m.group(1);
      if (!name.startsWith("\"") && RESERVED.contains(name.toLowerCase())) {
        unquoted.add(name);
      }
    }
    assertEquals(List.of(), unquoted, "step " + version + ": PostgreSQL reserves these; write them in double quotes");
  }

  @org.junit.jupiter.api.Test
  void schemaVersion_isTheNumberOfSteps() {
    assertEquals(Catalog.SCHEMA_VERSION, Catalog.migrations().size());
  }
}
