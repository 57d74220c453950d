package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import com.sun.jna.Memory;
import dev.shade.nativeio.MappedFile.Advice;
import java.io.EOFException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Failures that need no special privileges: errno from real calls becomes the right exception
 * with a message that names the call, the path, the errno and advice; misuse after close and
 * out-of-range access fail with their own exceptions.
 */
class ErrorPathTest {
  @TempDir
  Path dir;

  /** One call on a file handle, for matrices of operations. */
  @FunctionalInterface
  interface HandleCall {
    void apply(FileHandle f) throws Exception;
  }

  /** One call on a mapping, for matrices of operations. */
  @FunctionalInterface
  interface MappingCall {
    void apply(MappedFile m) throws Exception;
  }

  @Test
  void open_missingPath_throwsNotFoundNamingCallPathErrnoAndAdvice() {
    Path missing = dir.resolve("no-such-file.img");

    NotFoundException e = assertThrows(NotFoundException.class,
        () -> FileHandle.openReadWrite(missing));

    assertEquals("open", e.call());
    assertEquals(missing.toString(), e.resource());
    assertEquals(Errno.ENOENT, e.errno());
    assertEquals("open(" + missing + ") failed: No such file or directory (ENOENT); "
        + "check that the path exists", e.getMessage());
  }

  @Test
  void open_pathThroughRegularFile_throwsNotFoundWithEnotdir() throws Exception {
    Path file = Files.createFile(dir.resolve("plain"));
    Path below = file.resolve("child");

    NotFoundException e = assertThrows(NotFoundException.class, () -> FileHandle.create(below));

    assertEquals(Errno.ENOTDIR, e.errno());
    assertTrue(e.getMessage().startsWith("open(" + below + ") failed: "), e.getMessage());
    assertTrue(e.getMessage().contains("(ENOTDIR); a component of the path is not a directory"),
        e.getMessage());
  }

  @Test
  void open_exclusiveCreateOfExistingFile_throwsPlainErrnoExceptionWithEexist() throws Exception {
    Path file = Files.createFile(dir.resolve("exists"));

    ErrnoException e = assertThrows(ErrnoException.class, () -> FileHandle.open(file,
        FileHandle.O_RDWR | FileHandle.O_CREAT | FileHandle.O_EXCL, 0600));

    assertSame(ErrnoException.class, e.getClass(), "EEXIST has no subclass");
    assertEquals(Errno.EEXIST, e.errno());
    assertEquals("open(" + file + ") failed: File exists (EEXIST)", e.getMessage());
  }

  @Test
  void statVfs_missingPath_throwsNotFoundNamingStatvfs() {
    Path missing = dir.resolve("gone");

    NotFoundException e = assertThrows(NotFoundException.class, () -> StatVfs.of(missing));

    assertEquals("statvfs", e.call());
    assertTrue(e.getMessage().startsWith("statvfs(" + missing + ") failed: "), e.getMessage());
  }

  @Test
  void writeFully_readOnlyHandle_throwsEbadfNamingPositionAndLength() throws Exception {
    Path file = Files.write(dir.resolve("ro.img"), new byte[100]);
    try (FileHandle f = FileHandle.openReadOnly(file)) {
      ErrnoException e = assertThrows(ErrnoException.class,
          () -> f.writeFully(10, ByteBuffer.wrap(new byte[5])));

      assertEquals(Errno.EBADF, e.errno());
      assertEquals("pwrite(" + file + ") [pos=10 len=5] failed: Bad file descriptor (EBADF)",
          e.getMessage());
    }
  }

  @Test
  void ioctl_tapeRequestOnRegularFile_throwsWithEnottyAdvice() throws Exception {
    // MTIOCGET = _IOR('m', 2, struct mtget), 48 bytes on LP64: a tape ioctl no filesystem knows.
    long mtiocget = (2L << 30) | (48L << 16) | ('m' << 8) | 2;
    try (FileHandle f = FileHandle.create(dir.resolve("tape.img"));
        Memory mtget = new Memory(48)) {
      ErrnoException e = assertThrows(ErrnoException.class,
          () -> f.ioctl("MTIOCGET", mtiocget, mtget));

      assertEquals(Errno.ENOTTY, e.errno());
      assertEquals("ioctl(MTIOCGET)", e.call());
      assertTrue(e.getMessage().contains(dir.resolve("tape.img").toString())
          && e.getMessage().contains("(ENOTTY); the file does not support this ioctl"),
          e.getMessage());
    }
  }

  @Test
  void map_writableOverReadOnlyHandle_throwsPermissionExceptionFromMmap() throws Exception {
    Path file = Files.write(dir.resolve("ro.img"), new byte[8192]);
    try (FileHandle f = FileHandle.openReadOnly(file)) {
      PermissionException e = assertThrows(PermissionException.class,
          () -> MappedFile.map(f, 8192, true, 12));

      assertEquals("mmap", e.call());
      assertEquals(Errno.EACCES, e.errno());
      assertTrue(e.getMessage().startsWith("mmap(" + file + ") [offset=0 length=4096] failed: "),
          e.getMessage());
      // The read-only handle still works for a read-only mapping.
      try (MappedFile m = MappedFile.map(f, 8192, false, 12)) {
        assertEquals(8192, m.length());
      }
    }
  }

  @Test
  void readFully_pastEndOfFile_throwsEofNamingPositionAndPath() throws Exception {
    Path file = Files.write(dir.resolve("short.img"), new byte[100]);
    try (FileHandle f = FileHandle.openReadOnly(file)) {
      ByteBuffer dst = ByteBuffer.allocate(50);

      EOFException e = assertThrows(EOFException.class, () -> f.readFully(80, dst));

      assertEquals("read past EOF (pos=100): FileHandle(" + file + ")", e.getMessage());
      assertEquals(20, dst.position(), "the bytes before EOF were read");
      assertEquals(0, f.read(100, ByteBuffer.allocate(1)), "read at EOF returns 0");
    }
  }

  @Test
  void positionalCalls_negativeArguments_nameTheValue() throws Exception {
    try (FileHandle f = FileHandle.create(dir.resolve("neg.img"))) {
      assertEquals("length is negative: -1",
          assertThrows(IllegalArgumentException.class, () -> f.truncate(-1)).getMessage());
      assertEquals("position is negative: -3", assertThrows(IllegalArgumentException.class,
          () -> f.readFully(-3, ByteBuffer.allocate(1))).getMessage());
      assertEquals("position is negative: -5", assertThrows(IllegalArgumentException.class,
          () -> f.writeFully(-5, ByteBuffer.allocate(1))).getMessage());
      assertEquals("position is negative: -4", assertThrows(IllegalArgumentException.class,
          () -> f.read(-4, ByteBuffer.allocate(1))).getMessage());
      // Linux reports a negative seek offset as ENXIO, which would otherwise read as "no data".
      assertEquals("offset is negative: -1", assertThrows(IllegalArgumentException.class,
          () -> f.nextData(-1)).getMessage());
      assertEquals("offset is negative: -2", assertThrows(IllegalArgumentException.class,
          () -> f.nextHole(-2)).getMessage());
    }
  }

  static Stream<Arguments> handleCalls() {
    return Stream.of(
        arguments("fd", (HandleCall) FileHandle::fd),
        arguments("size", (HandleCall) FileHandle::size),
        arguments("truncate", (HandleCall) f -> f.truncate(10)),
        arguments("allocate", (HandleCall) f -> f.allocate(0, 10)),
        arguments("punchHole", (HandleCall) f -> f.punchHole(0, 10)),
        arguments("fsync", (HandleCall) FileHandle::fsync),
        arguments("fdatasync", (HandleCall) FileHandle::fdatasync),
        arguments("read", (HandleCall) f -> f.read(0, ByteBuffer.allocate(1))),
        arguments("readFully", (HandleCall) f -> f.readFully(0, ByteBuffer.allocateDirect(1))),
        arguments("writeFully", (HandleCall) f -> f.writeFully(0, ByteBuffer.allocate(1))),
        arguments("nextData", (HandleCall) f -> f.nextData(0)),
        arguments("nextHole", (HandleCall) f -> f.nextHole(0)),
        arguments("lock", (HandleCall) f -> f.lock(true, false)),
        arguments("unlock", (HandleCall) FileHandle::unlock),
        arguments("ioctl", (HandleCall) f -> f.ioctl("FIONREAD", 0x541B, 0L)),
        arguments("map", (HandleCall) f -> MappedFile.map(f, false)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("handleCalls")
  void fileHandle_callAfterClose_throwsAlreadyClosedNamingPath(String name, HandleCall call)
      throws Exception {
    Path file = Files.write(dir.resolve("closed.img"), new byte[4096]);
    FileHandle f = FileHandle.openReadWrite(file);
    f.close();
    assertDoesNotThrow(f::close, "a second close does nothing");

    AlreadyClosedException e = assertThrows(AlreadyClosedException.class, () -> call.apply(f));

    assertEquals("file is closed: FileHandle(" + file + ")", e.getMessage());
  }

  static Stream<Arguments> mappingCalls() {
    return Stream.of(
        arguments("read", (MappingCall) m -> m.read(0, ByteBuffer.allocate(1))),
        arguments("write", (MappingCall) m -> m.write(0, ByteBuffer.allocate(1))),
        arguments("zero", (MappingCall) m -> m.zero(0, 1)),
        arguments("force", (MappingCall) m -> m.force(0, 1)),
        arguments("advise", (MappingCall) m -> m.advise(0, 1, Advice.WILLNEED)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("mappingCalls")
  void mappedFile_callAfterClose_throwsAlreadyClosedNamingPath(String name, MappingCall call)
      throws Exception {
    Path file = Files.write(dir.resolve("closed.img"), new byte[8192]);
    try (FileHandle f = FileHandle.openReadWrite(file)) {
      MappedFile m = MappedFile.map(f, 8192, true, 12);
      m.close();
      assertDoesNotThrow(m::close, "a second close does nothing");

      AlreadyClosedException e = assertThrows(AlreadyClosedException.class, () -> call.apply(m));

      assertEquals("mapping is closed: MappedFile(" + file + ", length=8192, chunk=2^12)",
          e.getMessage());
      assertEquals(8192, f.size(), "closing the mapping leaves the file open");
    }
  }

  static Stream<Arguments> outOfRange() {
    long len = 3 * 4096 + 10;
    return Stream.of(
        arguments("read past the end", (MappingCall) m -> m.read(len - 1, ByteBuffer.allocate(2)),
            "pos=" + (len - 1) + " len=2"),
        arguments("read at a negative position",
            (MappingCall) m -> m.read(-1, ByteBuffer.allocate(1)), "pos=-1 len=1"),
        arguments("read one past the end", (MappingCall) m -> m.read(len, ByteBuffer.allocate(1)),
            "pos=" + len + " len=1"),
        arguments("write past the end",
            (MappingCall) m -> m.write(len - 5, ByteBuffer.allocate(6)),
            "pos=" + (len - 5) + " len=6"),
        arguments("zero past the end", (MappingCall) m -> m.zero(4096, len), "pos=4096 len=" + len),
        arguments("zero with a negative length", (MappingCall) m -> m.zero(0, -1), "pos=0 len=-1"),
        arguments("force past the end", (MappingCall) m -> m.force(0, len + 1),
            "pos=0 len=" + (len + 1)),
        arguments("advise past the end",
            (MappingCall) m -> m.advise(Long.MAX_VALUE, 1, Advice.NORMAL),
            "pos=" + Long.MAX_VALUE + " len=1"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("outOfRange")
  void mappedFile_outOfRange_throwsIndexOutOfBoundsNamingPosAndLen(String name, MappingCall call,
      String range) throws Exception {
    long len = 3 * 4096 + 10;
    Path file = dir.resolve("range.img");
    try (FileHandle f = FileHandle.create(file)) {
      f.truncate(len);
      try (MappedFile m = MappedFile.map(f, len, true, 12)) {
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
            () -> call.apply(m));

        assertEquals("range out of bounds (" + range + " length=" + len + "): " + m,
            e.getMessage());
      }
    }
  }

  @Test
  void map_badArguments_throwIllegalArgumentNamingTheValue() throws Exception {
    Path file = dir.resolve("args.img");
    try (FileHandle f = FileHandle.create(file)) {
      f.truncate(4096);
      assertEquals("chunkPower must be in [12, 30]: 11", assertThrows(
          IllegalArgumentException.class, () -> MappedFile.map(f, 4096, false, 11)).getMessage());
      assertEquals("chunkPower must be in [12, 30]: 31", assertThrows(
          IllegalArgumentException.class, () -> MappedFile.map(f, 4096, false, 31)).getMessage());
      assertEquals("mapping length 4097 exceeds the size 4096 of " + file, assertThrows(
          IllegalArgumentException.class, () -> MappedFile.map(f, 4097, false, 12)).getMessage());
      assertEquals("length is negative: -1", assertThrows(
          IllegalArgumentException.class, () -> MappedFile.map(f, -1, false, 12)).getMessage());
    }
  }

  @Test
  void write_readOnlyMapping_throwsIllegalState() throws Exception {
    Path file = dir.resolve("ro-map.img");
    try (FileHandle f = FileHandle.create(file)) {
      f.truncate(4096);
      try (MappedFile m = MappedFile.map(f, false)) {
        IllegalStateException e = assertThrows(IllegalStateException.class,
            () -> m.write(0, ByteBuffer.allocate(1)));
        assertEquals("mapping is read-only: " + m, e.getMessage());
      }
    }
  }

  @Test
  void map_emptyFile_hasNoChunksAndRejectsAnyByte() throws Exception {
    try (FileHandle f = FileHandle.create(dir.resolve("empty.img"));
        MappedFile m = MappedFile.map(f, true)) {
      assertEquals(0, m.length());
      m.read(0, ByteBuffer.allocate(0));
      m.force(0, 0);
      assertThrows(IndexOutOfBoundsException.class, () -> m.read(0, ByteBuffer.allocate(1)));
    }
  }

  @Test
  void errnoName_unknownValue_fallsBackToNumber() {
    assertEquals("ENOSPC", Errno.name(Errno.ENOSPC));
    assertEquals("errno 9999", Errno.name(9999));
  }
}
