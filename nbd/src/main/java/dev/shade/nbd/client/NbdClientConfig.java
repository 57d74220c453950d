package dev.shade.nbd.client;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import javax.net.ssl.SSLContext;

/**
 * How to reach one export and what to negotiate: the URI, TLS files, meta contexts, timeouts
 * and the bound on requests in flight. Made with {@link #builder(String)}.
 *
 * <p>Immutable.
 */
public final class NbdClientConfig {
  /** The export. */
  private final NbdUri uri;
  /** CA that signs the server's certificate; null: the URI's tls-certificates/ca-cert.pem. */
  private final Path tlsCa;
  /** Client certificate (chain); null: tls-certificates/client-cert.pem if present. */
  private final Path tlsCert;
  /** Its key (PKCS#8 or PKCS#1 RSA); null: tls-certificates/client-key.pem if present. */
  private final Path tlsKey;
  /** A TLS context given outright; overrides the files. */
  private final SSLContext sslContext;
  /** Meta contexts to select with SET_META_CONTEXT, in order. */
  private final List<String> metaContexts;
  /** Whether to ask for structured replies. */
  private final boolean structuredReplies;
  /** Limit on the TCP or Unix connect. */
  private final Duration connectTimeout;
  /** Limit on the whole handshake (including TLS). */
  private final Duration handshakeTimeout;
  /** Limit on how long the oldest request in flight may wait for its reply; zero: none. */
  private final Duration replyTimeout;
  /** Requests in flight at most on one connection. */
  private final int maxInFlight;
  /** SO_RCVBUF and SO_SNDBUF asked of the kernel. */
  private final int socketBufferBytes;

  private NbdClientConfig(Builder b) {
    this.uri = b.uri;
    this.tlsCa = b.tlsCa;
    this.tlsCert = b.tlsCert;
    this.tlsKey = b.tlsKey;
    this.sslContext = b.sslContext;
    this.metaContexts = List.copyOf(b.metaContexts);
    this.structuredReplies = b.structuredReplies;
    this.connectTimeout = b.connectTimeout;
    this.handshakeTimeout = b.handshakeTimeout;
    this.replyTimeout = b.replyTimeout;
    this.maxInFlight = b.maxInFlight;
    this.socketBufferBytes = b.socketBufferBytes;
  }

  /** A builder for {@code uri} (see {@link NbdUri}). */
  public static Builder builder(String uri) {
    return new Builder(NbdUri.parse(uri));
  }

  /** A builder for {@code uri}. */
  public static Builder builder(NbdUri uri) {
    return new Builder(uri);
  }

  /** A builder holding every setting of this one. */
  public Builder toBuilder() {
    Builder b = new Builder(uri);
    b.tlsCa = tlsCa;
    b.tlsCert = tlsCert;
    b.tlsKey = tlsKey;
    b.sslContext = sslContext;
    b.metaContexts.addAll(metaContexts);
    b.structuredReplies = structuredReplies;
    b.connectTimeout = connectTimeout;
    b.handshakeTimeout = handshakeTimeout;
    b.replyTimeout = replyTimeout;
    b.maxInFlight = maxInFlight;
    b.socketBufferBytes = socketBufferBytes;
    return b;
  }

  public NbdUri uri() {
    return uri;
  }

  public Optional<Path> tlsCa() {
    return Optional.ofNullable(tlsCa != null ? tlsCa : uri.tlsCertificates().map(d -> d.resolve("ca-cert.pem")).orElse(null));
  }

  public Optional<Path> tlsCert() {
    return Optional.ofNullable(tlsCert != null ? tlsCert : uri.tlsCertificates().map(d -> d.resolve("client-cert.pem")).orElse(null));
  }

  public Optional<Path> tlsKey() {
    return Optional.ofNullable(tlsKey != null ? tlsKey : uri.tlsCertificates().map(d -> d.resolve("client-key.pem")).orElse(null));
  }

  public Optional<SSLContext> sslContext() {
    return Optional.ofNullable(sslContext);
  }

  public List<String> metaContexts() {
    return metaContexts;
  }

  public boolean structuredReplies() {
    return structuredReplies;
  }

  public Duration connectTimeout() {
    return connectTimeout;
  }

  public Duration handshakeTimeout() {
    return handshakeTimeout;
  }

  public Duration replyTimeout() {
    return replyTimeout;
  }

  public int maxInFlight() {
    return maxInFlight;
  }

  public int socketBufferBytes() {
    return socketBufferBytes;
  }

  @Override
  public String toString() {
    return uri.toString();
  }

  /** Collects settings; not thread-safe. */
  public static final class Builder {
    private NbdUri uri;
    private Path tlsCa;
    private Path tlsCert;
    private Path tlsKey;
    private SSLContext sslContext;
    private final List<String> metaContexts = new ArrayList<>();
    private boolean structuredReplies = true;
    private Duration connectTimeout = Duration.ofSeconds(10);
    private Duration handshakeTimeout = Duration.ofSeconds(30);
    private Duration replyTimeout = Duration.ofSeconds(60);
    private int maxInFlight = 64;
    private int socketBufferBytes = 4 << 20;

    private Builder(NbdUri uri) {
      this.uri = Objects.requireNonNull(uri, "uri");
    }

    /** Another export (or server) with the same settings. */
    public Builder uri(NbdUri u) {
      this.uri = Objects.requireNonNull(u, "uri");
      return this;
    }

    /** The CA file that signs the server's certificate (PEM). */
    public Builder tlsCa(Path ca) {
      this.tlsCa = ca;
      return this;
    }

    /** The client certificate (PEM chain) and its key (PKCS#8 or PKCS#1 RSA PEM). */
    public Builder tlsClientCertificate(Path cert, Path key) {
      if ((cert == null) != (key == null)) {
        throw new IllegalArgumentException("a client certificate needs its key and a key its certificate: " + cert + ", " + key);
      }
      this.tlsCert = cert;
      this.tlsKey = key;
      return this;
    }

    /** A ready TLS context; the TLS files are then not read. */
    public Builder sslContext(SSLContext ctx) {
      this.sslContext = ctx;
      return this;
    }

    /** Meta contexts to select (e.g. {@code base:allocation}, {@code qemu:allocation-depth}). */
    public Builder metaContexts(String... names) {
      for (String n : names) {
        if (n == null || n.isEmpty()) {
          throw new IllegalArgumentException("empty meta context name");
        }
        if (!metaContexts.contains(n)) {
          metaContexts.add(n);
        }
      }
      return this;
    }

    /** Whether to ask for structured replies (default true; needed for meta contexts). */
    public Builder structuredReplies(boolean on) {
      this.structuredReplies = on;
      return this;
    }

    public Builder connectTimeout(Duration d) {
      this.connectTimeout = positive(d, "connect timeout");
      return this;
    }

    public Builder handshakeTimeout(Duration d) {
      this.handshakeTimeout = positive(d, "handshake timeout");
      return this;
    }

    /** How long the oldest request in flight may wait for its reply; {@link Duration#ZERO} for ever. */
    public Builder replyTimeout(Duration d) {
      if (d == null || d.isNegative()) {
        throw new IllegalArgumentException("reply timeout is negative: " + d);
      }
      this.replyTimeout = d;
      return this;
    }

    /** Requests in flight at most on one connection (default 64); further requests wait. */
    public Builder maxInFlight(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("requests in flight must be at least 1: " + n);
      }
      this.maxInFlight = n;
      return this;
    }

    /** Socket send and receive buffer sizes asked of the kernel (default 4 MiB). */
    public Builder socketBufferBytes(int n) {
      if (n < 4096) {
        throw new IllegalArgumentException("socket buffer below 4096 bytes: " + n);
      }
      this.socketBufferBytes = n;
      return this;
    }

    public NbdClientConfig build() {
      return new NbdClientConfig(this);
    }

    private static Duration positive(Duration d, String what) {
      if (d == null || d.isNegative() || d.isZero()) {
        throw new IllegalArgumentException(what + " must be positive: " + d);
      }
      return d;
    }
  }
}
