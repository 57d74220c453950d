package dev.shade.cli;

import dev.shade.offhost.backup.CatalogLocation;
import java.nio.file.Path;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * The {@code --catalog URL} option of every command that uses a backup catalog (a picocli mixin).
 *
 * <p>Not thread-safe: picocli fills it, then one command reads it.
 */
final class CatalogOption {
  @Option(names = "--catalog", paramLabel = "URL", converter = CatalogOption.Url.class,
      description = "The backup catalog: jdbc:postgresql://HOST:PORT/DB?user=USER[&password=PW] (a catalog that "
          + "several backup servers share) or jdbc:sqlite:PATH (default: the SQLite file catalog.db in LIB). "
          + "PGPASSWORD and ~/.pgpass are not read; give password= in the URL (docs/backup.md, \"The catalog\").")
  CatalogLocation url;

  /** The catalog to use for the library in {@code library}: {@code --catalog}, else the library's own. */
  CatalogLocation location(Path library) {
    return url != null ? url : CatalogLocation.inLibrary(library);
  }

  /** True when {@code --catalog} was given. */
  boolean given() {
    return url != null;
  }

  /** Parses a catalog URL; a malformed one is a usage error whose message hides any password. */
  static final class Url implements ITypeConverter<CatalogLocation> {
    @Override
    public CatalogLocation convert(String value) {
      try {
        return CatalogLocation.parse(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}
