package dev.shade.offhost.backup;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Instant;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * The tar of a record on tape (job, verification and drill records: {@link JobRecordFile},
 * {@link VerifyRecordFile}, {@link DrillRecordFile}): one PAX member holding a JSON document.
 *
 * <p>Stateless; thread-safe.
 */
final class RecordTar {
  private RecordTar() {}

  /** Writes {@code body} as member {@code member} of a tar to {@code out}, blocked at {@code blockSize}. */
  static void write(OutputStream out, int blockSize, String member, byte[] body, Instant written, String comment)
      throws IOException {
    TarArchiveOutputStream tar = new TarArchiveOutputStream(out, blockSize, "UTF-8");
    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    TarArchiveEntry e = new TarArchiveEntry(member);
    e.setSize(body.length);
    e.setMode(0644);
    e.setModTime(written.toEpochMilli());
    e.setUserName("shade");
    e.setGroupName("shade");
    e.addPaxHeader("comment", comment);
    tar.putArchiveEntry(e);
    tar.write(body);
    tar.closeArchiveEntry();
    tar.finish();
  }

  /** The body of the first member of the tar {@code in}, which must be {@code member}. */
  static byte[] read(InputStream in, String member, String what) throws IOException {
    TarArchiveInputStream tar = new TarArchiveInputStream(in, "UTF-8");
    TarArchiveEntry e = tar.getNextEntry();
    if (e == null || !e.getName().equals(member)) {
      throw new IOException("not a " + what + ": its first member is " + (e == null ? "missing" : e.getName()));
    }
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    tar.transferTo(b);
    return b.toByteArray();
  }
}
