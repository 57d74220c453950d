package dev.shade.requestor.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@link Writers#parse} and the connection strings of postgres specs, against a mount table of our own. */
class WritersTest {
  @TempDir Path dir;

  /** A mount table with / and /srv/pg on its own ext4, and a bind mount of /data/sub at /bound. */
  private Path mountInfo() throws Exception {
    return Files.writeString(dir.resolve("mountinfo"), String.join("\n",
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro",
        "40 22 43:0 / /srv/pg rw,noatime shared:5 - ext4 /dev/nbd0 rw,stripe=16",
        "41 22 43:1 /data/sub /bound rw,relatime - xfs /dev/nbd1 rw",
        "42 22 0:50 / /with\\040space rw - tmpfs tmpfs rw,size=4k", ""));
  }

  @Test
  void parse_fs_mountPointInTable() throws Exception {
    Writer w = Writers.parse("fs:/srv/pg/", mountInfo());
    FsWriter fs = assertInstanceOf(FsWriter.class, w);
    assertEquals("fs:/srv/pg/", w.spec());
    assertEquals(Path.of("/srv/pg"), fs.mountPoint());
    assertTrue(w.isFilesystem());
    assertEquals("ext4", w.identify().get("fsType"));
    assertEquals("/dev/nbd0", w.identify().get("source"));
    assertEquals("rw,noatime,stripe=16", w.identify().get("options"));
  }

  @Test
  void parse_fs_symbolicLinkToAMountPoint_isResolved() throws Exception {
    Path link = Files.createSymbolicLink(dir.resolve("root-link"), Path.of("/"));
    FsWriter fs = assertInstanceOf(FsWriter.class, Writers.parse("fs:" + link));
    assertEquals(Path.of("/"), fs.mountPoint());
    assertEquals("fs:" + link, fs.spec());
    Files.delete(link);
  }

  @Test
  void parse_fs_escapedSpaceInMountPoint() throws Exception {
    assertInstanceOf(FsWriter.class, Writers.parse("fs:/with space", mountInfo()));
  }

  @Test
  void parse_fs_notAMountPoint_saysSo() throws Exception {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Writers.parse("fs:/srv/pg/data", mountInfo()));
    assertTrue(e.getMessage().contains("/srv/pg/data is not a mount point"), e::getMessage);
  }

  @Test
  void parse_unknownKind_listsTheKinds() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Writers.parse("mysql:/x"));
    assertTrue(e.getMessage().contains("unknown writer kind 'mysql'"), e::getMessage);
    assertTrue(e.getMessage().contains("fs, sqlite, postgres, exec"), e::getMessage);
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "fs:|has nothing after 'fs:'",
      "sqlite:  |has nothing after 'sqlite:'",
      "postgres:|has nothing after 'postgres:'",
      "/srv/pg|has no kind",
      ":/srv/pg|has no kind",
      "fs:srv/pg|is not an absolute path",
      "postgres:host=/var/run/postgresql port=5432|is a Unix socket directory",
      "postgres:port=5432 user=postgres|no host",
      "postgres:host=127.0.0.1 port=99999|not a TCP port",
      "postgres:host=127.0.0.1 colour=blue|unknown connection keyword colour",
      "postgres:host=127.0.0.1 port|missing '='",
      "postgres:host='127.0.0.1|unterminated quoted value",
      "postgres:postgresql://%2Fvar%2Frun%2Fpostgresql/db|is a Unix socket directory",
  })
  void parse_badSpec_saysWhatIsWrong(String spec, String expected) throws Exception {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Writers.parse(spec, mountInfo()));
    assertTrue(e.getMessage().contains(expected), () -> spec + ": " + e.getMessage());
  }

  @Test
  void parse_sqlite_missingFile_saysSo() {
    Path missing = dir.resolve("app.db");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Writers.parse("sqlite:" + missing));
    assertTrue(e.getMessage().contains("database file " + missing + " does not exist"), e::getMessage);
  }

  @Test
  void parse_sqlite_directory_saysSo() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Writers.parse("sqlite:" + dir));
    assertTrue(e.getMessage().contains("is not a regular file"), e::getMessage);
  }

  @Test
  void parse_sqlite_existingFile() throws Exception {
    Path db = Files.createFile(dir.resolve("app.db"));
    assertInstanceOf(SqliteWriter.class, Writers.parse("sqlite:" + db));
  }

  @Test
  void parse_exec_delegatesToExecWriter() {
    Writer w = Writers.parse("exec:" + dir);
    assertInstanceOf(ExecWriter.class, w);
    assertEquals("exec:" + dir, w.spec());
  }

  @Test
  void parse_postgres_keywords() {
    Writer w = Writers.parse("postgres:host=127.0.0.1 port=5433 dbname=app user=backup password='s3 cr\\'t' "
        + "shade.archive=/srv/archive");
    assertInstanceOf(PostgresWriter.class, w);
    assertTrue(w.toString().contains("password=***"), w::toString);
    assertTrue(!w.toString().contains("s3"), w::toString);
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "host=127.0.0.1 port=5433 dbname=app user=backup|jdbc:postgresql://127.0.0.1:5433/app|backup",
      "host = localhost  dbname = app|jdbc:postgresql://localhost:5432/app|",
      "postgresql://backup:pw@127.0.0.1:5433/app?sslmode=disable|jdbc:postgresql://127.0.0.1:5433/app|backup",
      "postgres://[::1]:6000/app|jdbc:postgresql://[::1]:6000/app|",
      "postgresql://u@db.example/|jdbc:postgresql://db.example:5432/u|u",
  })
  void connInfo_toJdbc(String text, String url, String user) {
    ConnInfo c = ConnInfo.parse(text);
    assertEquals(url, c.jdbcUrl());
    Properties p = c.jdbcProperties();
    assertEquals(user, p.getProperty("user"));
  }

  @Test
  void connInfo_archiveKeywordStaysOut() {
    ConnInfo c = ConnInfo.parse("host=127.0.0.1 shade.archive=/srv/wal password=x");
    assertEquals("/srv/wal", c.archive());
    assertEquals(null, c.jdbcProperties().getProperty("shade.archive"));
    assertEquals("x", c.jdbcProperties().getProperty("password"));
  }

  @Test
  void connInfo_redactsPasswords() {
    assertEquals("host=h password=*** user=u", ConnInfo.redact("host=h password='a b' user=u"));
    assertEquals("postgresql://u:***@h/db", ConnInfo.redact("postgresql://u:secret@h/db"));
  }

  @Test
  void mountTable_holding_longestPrefixAndBindRoot() throws Exception {
    MountTable t = MountTable.read(mountInfo());
    assertEquals(Path.of("/srv/pg"), t.holding(Path.of("/srv/pg/15/main")).mountPoint());
    assertEquals(Path.of("/"), t.holding(Path.of("/srv/pgx")).mountPoint());
    MountTable.Mount bound = t.holding(Path.of("/bound/pgdata"));
    assertEquals("data/sub/pgdata", PostgresWriter.pathInFilesystem(bound, Path.of("/bound/pgdata")));
    assertEquals("15/main", PostgresWriter.pathInFilesystem(t.holding(Path.of("/srv/pg/15/main")),
        Path.of("/srv/pg/15/main")));
    assertEquals("", PostgresWriter.pathInFilesystem(t.holding(Path.of("/srv/pg")), Path.of("/srv/pg")));
  }

  @Test
  void postmasterOpts_toPgCtlOptions() {
    String opts = "/usr/lib/postgresql/15/bin/postgres \"-D\" \"/srv/pg/data\" \"-p\" \"5433\" \"-c\" "
        + "\"listen_addresses=127.0.0.1\" \"-c\" \"unix_socket_directories=/tmp/it's\"\n";
    var argv = PgCtl.postmasterOpts(opts);
    assertEquals("/usr/lib/postgresql/15/bin/postgres", argv.get(0));
    assertEquals(java.util.List.of("-p", "5433", "-c", "listen_addresses=127.0.0.1", "-c",
        "unix_socket_directories=/tmp/it's"), PgCtl.serverOptions(argv));
    assertEquals("'-p' '5433' '-c' 'unix_socket_directories=/tmp/it'\\''s'",
        PgCtl.shellWords(java.util.List.of("-p", "5433", "-c", "unix_socket_directories=/tmp/it's")));
  }

  @Test
  void startWalFile_fromTheLabel() throws Exception {
    String label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
        + "CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n"
        + "START TIME: 2026-12-01 11:00:00 UTC\nLABEL: shade\nSTART TIMELINE: 1\n";
    WriterMetadata m = new WriterMetadata("postgres:x",
        java.util.List.of(new WriterMetadata.File("pg/backup_label", label, 0600)), java.util.Map.of());
    assertEquals("000000010000000000000002", PostgresWriter.startWalFile(m));
    assertThrows(java.io.IOException.class, () -> PostgresWriter.startWalFile(WriterMetadata.none("postgres:x")));
  }
}
