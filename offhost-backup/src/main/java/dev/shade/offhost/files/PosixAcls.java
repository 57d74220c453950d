package dev.shade.offhost.files;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * POSIX ACLs of a tree, read with one {@code getfacl} run and put back with {@code setfacl}, in
 * the text GNU tar keeps in {@code SCHILY.acl.access} and {@code SCHILY.acl.default}: one entry a
 * line, each ending in a newline ({@code user::rw-\nuser:1000:rw-\ngroup::r--\nmask::rw-\nother::r--\n}).
 *
 * <p>Thread-safe: no state.
 */
final class PosixAcls {
  /*
   * getfacl -R -P -s -n --absolute-names ROOT prints a block per file that has more than the
   * three base entries (-s), without following symbolic links (-P), with numeric ids (-n): the
   * archive is read on the backup server, whose user names need not be the production host's,
   * so ids are the faithful record (acl_from_text, which GNU tar and setfacl use, takes them).
   * A block is "# file: NAME", "# owner: ", "# group: ", then entries, "default:" ones last,
   * some with a "\t#effective:..." comment, which is dropped. getfacl escapes a name's bytes
   * that are not printable ASCII, white space or a backslash as \ooo.
   */

  /** One file's ACLs: the access ACL text, and the default ACL text (directories), each null when absent. */
  record Acl(String access, String defaults) {}

  private static final long TIMEOUT_SECONDS = 600;

  private PosixAcls() {}

  /** True when getfacl and setfacl (the acl package) are installed. */
  static boolean available() {
    return onPath("getfacl") && onPath("setfacl");
  }

  private static boolean onPath(String tool) {
    for (String d : (System.getenv().getOrDefault("PATH", "") + ":/usr/bin:/bin").split(":")) {
      if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool))) {
        return true;
      }
    }
    return false;
  }

  /** The ACLs under {@code root} (an absolute directory), by path relative to it ("" for the root). */
  static Map<String, Acl> read(Path root) throws IOException {
    String prefix = root.toAbsolutePath().normalize().toString();
    Process p = new ProcessBuilder("getfacl", "-R", "-P", "-s", "-n", "--absolute-names", prefix)
        .redirectError(ProcessBuilder.Redirect.PIPE).start();
    byte[] out;
    byte[] err;
    try (InputStream o = p.getInputStream(); InputStream e = p.getErrorStream()) {
      p.getOutputStream().close();
      out = o.readAllBytes();
      err = e.readAllBytes();
      if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException("getfacl -R " + prefix + " did not finish in " + TIMEOUT_SECONDS + " s");
      }
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted reading the ACLs of " + prefix, e);
    }
    if (p.exitValue() != 0) {
      throw new IOException("cannot read the ACLs of " + prefix + ": getfacl exited with " + p.exitValue() + ": "
          + new String(err, StandardCharsets.UTF_8).strip());
    }
    return parse(new String(out, StandardCharsets.ISO_8859_1), prefix);
  }

  /** Parses getfacl's output (as ISO-8859-1, byte for char) for the tree at {@code prefix}. */
  static Map<String, Acl> parse(String text, String prefix) throws IOException {
    Map<String, Acl> acls = new HashMap<>();
    String file = null;
    StringBuilder access = new StringBuilder();
    StringBuilder defaults = new StringBuilder();
    List<String> lines = new ArrayList<>(text.lines().toList());
    lines.add("");
    for (String line : lines) {
      if (line.startsWith("# file: ")) {
        file = unescape(line.substring(8));
        access.setLength(0);
        defaults.setLength(0);
      } else if (line.isEmpty()) {
        if (file != null) {
          String rel;
          if (file.equals(prefix)) {
            rel = "";
          } else if (file.startsWith(prefix + "/")) {
            rel = file.substring(prefix.length() + 1);
          } else {
            throw new IOException("getfacl named " + file + ", which is not under " + prefix);
          }
          acls.put(rel, new Acl(access.length() == 0 ? null : access.toString(),
              defaults.length() == 0 ? null : defaults.toString()));
        }
        file = null;
      } else if (!line.startsWith("#") && file != null) {
        int comment = line.indexOf('#');
        String entry = (comment >= 0 ? line.substring(0, comment) : line).strip();
        if (entry.startsWith("default:")) {
          defaults.append(entry.substring(8)).append('\n');
        } else if (!entry.isEmpty()) {
          access.append(entry).append('\n');
        }
      }
    }
    return acls;
  }

  /** getfacl's \ooo escapes undone, and the bytes read as UTF-8. */
  static String unescape(String s) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && isOctal(s, i + 1)) {
        b.write(Integer.parseInt(s.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        b.write(c & 0xff);
      }
    }
    return b.toString(StandardCharsets.UTF_8);
  }

  private static boolean isOctal(String s, int at) {
    if (at + 3 > s.length()) {
      return false;
    }
    for (int i = at; i < at + 3; i++) {
      if (s.charAt(i) < '0' || s.charAt(i) > '7') {
        return false;
      }
    }
    return true;
  }

  /**
   * Sets the ACLs of {@code file} (a regular file or directory this restore made, never a
   * symbolic link) from GNU tar's texts; either may be null.
   */
  static void apply(Path file, String access, String defaults) throws IOException {
    StringBuilder spec = new StringBuilder();
    for (String e : lines(access)) {
      spec.append(spec.length() == 0 ? "" : ",").append(e);
    }
    for (String e : lines(defaults)) {
      spec.append(spec.length() == 0 ? "" : ",").append("default:").append(e);
    }
    if (spec.length() == 0) {
      return;
    }
    for (int i = 0; i < spec.length(); i++) {
      char c = spec.charAt(i);
      if (!(Character.isLetterOrDigit(c) || ":,-_.@".indexOf(c) >= 0)) {
        throw new IOException("refusing the ACL of " + file + ": unexpected character '" + c + "' in " + spec);
      }
    }
    // --set replaces the whole ACL (access and default entries given together); "--" ends the options
    Process p = new ProcessBuilder("setfacl", "-P", "--set", spec.toString(), "--", file.toString())
        .redirectErrorStream(true).start();
    try (InputStream o = p.getInputStream()) {
      p.getOutputStream().close();
      String out = new String(o.readAllBytes(), StandardCharsets.UTF_8).strip();
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException("setfacl on " + file + " did not finish in 60 s");
      }
      if (p.exitValue() != 0) {
        throw new IOException("cannot set the ACL " + spec + " on " + file + ": setfacl exited with " + p.exitValue()
            + ": " + out + " (is the acl package installed, and does the filesystem support ACLs?)");
      }
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted setting the ACL of " + file, e);
    }
  }

  private static List<String> lines(String text) {
    List<String> out = new ArrayList<>();
    if (text != null) {
      for (String l : text.split("[\n,]")) {
        if (!l.isBlank()) {
          out.add(l.strip());
        }
      }
    }
    return out;
  }
}
