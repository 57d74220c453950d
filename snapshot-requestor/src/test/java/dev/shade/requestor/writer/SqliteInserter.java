package dev.shade.requestor.writer;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Statement;

/**
 * A child JVM that writes to an SQLite database for {@link SqliteWriterTest}: {@code insert DB}
 * commits transactions of {@value #ROWS_PER_TXN} rows in a loop, printing {@code ACK n} after the
 * n-th commit; {@code hold DB MILLIS} takes the write lock, prints {@code HELD}, keeps it for
 * MILLIS and commits.
 */
public final class SqliteInserter {
  /** Rows in each transaction: a copy holding a part of one is torn. */
  static final int ROWS_PER_TXN = 5;

  private SqliteInserter() {}

  public static void main(String[] args) throws Exception {
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + args[1])) {
      try (Statement st = c.createStatement()) {
        st.execute("PRAGMA busy_timeout = 30000"); // longer than any freeze of the test
      }
      if (args[0].equals("hold")) {
        try (Statement st = c.createStatement()) {
          st.execute("BEGIN IMMEDIATE");
          st.execute("INSERT INTO t(txn, pad) VALUES (-1, randomblob(100))");
          System.out.println("HELD");
          System.out.flush();
          Thread.sleep(Long.parseLong(args[2]));
          st.execute("COMMIT");
        }
        System.out.println("DONE");
        System.out.flush();
        return;
      }
      c.setAutoCommit(false);
      try (PreparedStatement ins = c.prepareStatement("INSERT INTO t(txn, pad) VALUES (?, randomblob(700))")) {
        for (int n = 1; ; n++) {
          for (int r = 0; r < ROWS_PER_TXN; r++) {
            ins.setInt(1, n);
            ins.executeUpdate();
          }
          c.commit();
          System.out.println("ACK " + n);
          System.out.flush();
        }
      }
    }
  }
}
