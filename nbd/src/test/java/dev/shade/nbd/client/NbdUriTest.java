package dev.shade.nbd.client;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class NbdUriTest {
  @Test
  void tcp_hostPortExport() {
    NbdUri u = NbdUri.parse("nbd://backup.example:10810/snap%201");
    assertFalse(u.tls());
    assertFalse(u.isUnix());
    assertEquals("backup.example", u.host().orElseThrow());
    assertEquals(10810, u.port());
    assertEquals("snap 1", u.export());
    assertEquals("nbd://backup.example:10810/snap%201", u.toString());
  }

  @Test
  void tcp_defaultPortAndEmptyExport() {
    NbdUri u = NbdUri.parse("nbds://[::1]");
    assertTrue(u.tls());
    assertEquals("::1", u.host().orElseThrow());
    assertEquals(NbdUri.DEFAULT_PORT, u.port());
    assertEquals("", u.export());
  }

  @Test
  void unix_socketAndTlsCertificates() {
    NbdUri u = NbdUri.parse("nbds+unix:///vol/db?socket=/run/shade/nbd.sock&tls-certificates=/etc/shade/pki&other=1");
    assertTrue(u.tls());
    assertTrue(u.isUnix());
    assertEquals(Path.of("/run/shade/nbd.sock"), u.socket().orElseThrow());
    assertEquals("vol/db", u.export());
    assertEquals(Path.of("/etc/shade/pki"), u.tlsCertificates().orElseThrow());
    assertTrue(u.tlsHostname().isEmpty());
    assertEquals(-1, u.port());
  }

  @Test
  void withExport_keepsServerAndQuery() {
    NbdUri u = NbdUri.parse("nbd+unix:///a?socket=/tmp/s").withExport("snap 2");
    assertEquals("snap 2", u.export());
    assertEquals(Path.of("/tmp/s"), u.socket().orElseThrow());
    assertEquals("b", NbdUri.parse("nbd://h:1/a").withExport("b").export());
  }

  @Test
  void bad_uris_sayWhy() {
    assertTrue(assertThrows(IllegalArgumentException.class, () -> NbdUri.parse("nbd+unix:///x")).getMessage().contains("socket"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> NbdUri.parse("http://x/y")).getMessage().contains("scheme"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> NbdUri.parse("nbd:///y")).getMessage().contains("host"));
    assertThrows(IllegalArgumentException.class, () -> NbdUri.parse("/dev/nbd0"));
  }
}
