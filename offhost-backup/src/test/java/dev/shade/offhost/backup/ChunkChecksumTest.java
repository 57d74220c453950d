package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The chunk checksums by name and value, and the records written before CRC-32C. */
class ChunkChecksumTest {
  private static final byte[] CHECK = "123456789".getBytes(StandardCharsets.US_ASCII);

  @Test
  void values_areTheStandardCheckValues_inLowerCaseHex() {
    // the check values of the two standards: CRC-32C (Castagnoli) of "123456789" and SHA-256 of "abc"
    assertEquals("e3069283", ChunkChecksum.CRC32C.of(CHECK, 0, CHECK.length));
    byte[] abc = "xabcx".getBytes(StandardCharsets.US_ASCII);
    assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ChunkChecksum.SHA256.of(abc, 1, 3));
    assertEquals("00000000", ChunkChecksum.CRC32C.of(new byte[0], 0, 0), "eight digits, leading zeros kept");
  }

  @Test
  void names_parseAsOperatorsWriteThem_andUnknownOnesAreRefused() throws IOException {
    assertEquals(ChunkChecksum.CRC32C, ChunkChecksum.parse("CRC32C"));
    assertEquals(ChunkChecksum.SHA256, ChunkChecksum.parse("sha256"));
    assertEquals(ChunkChecksum.SHA256, ChunkChecksum.parse("SHA-256"));
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> ChunkChecksum.parse("md5"));
    assertEquals("checksum must be crc32c or sha256: md5", bad.getMessage());
    assertEquals(ChunkChecksum.SHA256, ChunkChecksum.ofId("sha-256"));
    IOException unknown = assertThrows(IOException.class, () -> ChunkChecksum.ofId("blake3"));
    assertTrue(unknown.getMessage().contains("unknown chunk checksum \"blake3\""), unknown.getMessage());
    assertEquals("CRC-32C", ChunkChecksum.CRC32C.toString());
  }

  @Test
  void jobRecordWrittenBeforeCrc32c_readsAsSha256_withItsChunks() throws IOException {
    String old = """
        {"format":"shade-job-1","job":{"id":3,"volume":"db","volumeUuid":"u","snapshot":"s1","snapshotId":1,
         "snapshotCreated":"2026-12-01T12:00:00Z","size":131072,"level":"full","baseJob":null,"baseSnapshotId":null,
         "pool":"p","chunkSize":65536,"started":"2026-12-01T12:00:01Z","ended":"2026-12-01T12:00:02Z","outcome":"ok",
         "message":null,"bytes":65536},
         "archive":{"id":2,"cartridge":"SHD001","fileNumber":1,"bytes":90000,"manifestSha256":"ab",
          "pieces":[{"piece":0,"cartridge":"SHD001","fileNumber":1,"bytes":90000,"firstOffset":0,"endOffset":131072,
           "chunks":2}],
          "chunks":[{"offset":0,"length":65536,"sha256":"9f86"},{"offset":65536,"length":65536,"zero":true}]},
         "written":"2026-12-01T12:00:03Z"}""";
    JobRecordFile r = JobRecordFile.parse(old.getBytes(StandardCharsets.UTF_8));
    assertEquals(ChunkChecksum.SHA256, r.job().archive().chunkChecksum());
    assertEquals(new ChunkEntry(0, 65536, "9f86", false), r.chunks().get(0));
    assertEquals(new ChunkEntry(65536, 65536, null, true), r.chunks().get(1));
    assertEquals(0, r.job().snapshot().blockSize(), "a record from before the volume's block size was kept: not known");
    // written again, it keeps its kind and key, and still says nothing of a block size
    String again = r.toJson().toString();
    assertTrue(again.contains("\"chunkChecksum\":\"sha-256\"") && again.contains("\"sha256\":\"9f86\""), again);
    assertFalse(again.contains("volumeBlockSize"), again);
  }
}
