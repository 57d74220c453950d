package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.sun.jna.Native;
import dev.shade.testing.ChildJvm;
import dev.shade.testing.Command;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A SIGBUS while copying through a {@link MappedFile} arrives as an {@link java.io.IOException}
 * naming the operation, position and file, and the JVM lives on.
 */
class MappingFaultTest {
  @TempDir
  Path dir;

  @Test
  void read_pageBeyondTruncatedEnd_throwsIOExceptionNotCrash() throws Exception {
    Path file = dir.resolve("shrunk.img");

    Command c = ChildJvm.run(List.of(), ChildJvm.classpath(FileHandle.class, MappingFaultProbe.class, Native.class), dir, MappingFaultProbe.class,
        "truncated", file.toString());

    assertEquals(List.of("IOException",
        "I/O error on read through the mapping (pos=" + MappedFile.PAGE + "): MappedFile(" + file
            + ", length=" + 2 * MappedFile.PAGE + ", chunk=2^30); the disk may be full or failing",
        "alive"), List.of(c.requireSuccess().strip().split("\n")), c::toString);
  }
}
