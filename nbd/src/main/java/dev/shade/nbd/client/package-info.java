/**
 * shade's NBD client: {@link dev.shade.nbd.client.NbdClient} (one connection to one export,
 * pipelined and thread-safe), {@link dev.shade.nbd.client.NbdClientConfig} and
 * {@link dev.shade.nbd.client.NbdUri} (how to reach it), and
 * {@link dev.shade.nbd.client.ExportCopier} (an export, or ranges of it, into a file over
 * several connections). It depends only on the JDK and {@link dev.shade.nbd.protocol}.
 *
 * <p>Parts, one job each: {@code Transport} (bytes: plain channel, or TLS through an
 * SSLEngine), {@code Handshake} (option haggling), {@code Request} (one request in flight and
 * its reply), {@code Timer} (deadlines), {@code Window} (a copy's read slots), {@code dev.shade.nbd.tls.Pem}
 * (PEM files to an SSLContext).
 *
 * <p>Locks and threads:
 *
 * <table>
 *   <caption>locks of the client</caption>
 *   <tr><th>lock</th><th>guards</th><th>taken by</th></tr>
 *   <tr><td>{@code NbdClient.sendLock}</td><td>the transport's writing side and the request
 *       header buffer</td><td>any thread sending a request, and close()</td></tr>
 *   <tr><td>{@code Transport.Tls.writeLock}</td><td>SSLEngine.wrap and the outgoing
 *       ciphertext buffer</td><td>the sender (inside sendLock), and the reader thread when the
 *       engine asks for a wrap while unwrapping</td></tr>
 * </table>
 *
 * <p>Order: sendLock before writeLock; the reader thread never takes sendLock. Everything else
 * (the table of requests in flight, the bound on them, the first failure) is a concurrent
 * structure or an atomic. Each connection has one reader thread, which completes requests and
 * runs their futures' callbacks; the shared {@code Timer} thread closes channels whose
 * deadlines pass.
 */
package dev.shade.nbd.client;
