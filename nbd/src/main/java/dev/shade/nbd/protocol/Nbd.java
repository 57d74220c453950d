package dev.shade.nbd.protocol;

/**
 * Constants of the NBD protocol (doc/proto.md of the NetworkBlockDevice project): magics,
 * options, replies, flags, commands and errors. Names follow the document without the
 * {@code NBD_} prefix.
 */
public final class Nbd {
  private Nbd() {}

  // handshake
  public static final long NBDMAGIC = 0x4e42444d41474943L;
  public static final long IHAVEOPT = 0x49484156454F5054L;
  public static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;
  public static final int FLAG_FIXED_NEWSTYLE = 1;
  public static final int FLAG_NO_ZEROES = 1 << 1;
  public static final int FLAG_C_FIXED_NEWSTYLE = 1;
  public static final int FLAG_C_NO_ZEROES = 1 << 1;

  // options
  public static final int OPT_EXPORT_NAME = 1;
  public static final int OPT_ABORT = 2;
  public static final int OPT_LIST = 3;
  public static final int OPT_STARTTLS = 5;
  public static final int OPT_INFO = 6;
  public static final int OPT_GO = 7;
  public static final int OPT_STRUCTURED_REPLY = 8;
  public static final int OPT_LIST_META_CONTEXT = 9;
  public static final int OPT_SET_META_CONTEXT = 10;

  // option replies
  public static final int REP_ACK = 1;
  public static final int REP_SERVER = 2;
  public static final int REP_INFO = 3;
  public static final int REP_META_CONTEXT = 4;
  public static final int REP_ERR_UNSUP = 0x80000001;
  public static final int REP_ERR_POLICY = 0x80000002;
  public static final int REP_ERR_INVALID = 0x80000003;
  public static final int REP_ERR_PLATFORM = 0x80000004;
  public static final int REP_ERR_TLS_REQD = 0x80000005;
  public static final int REP_ERR_UNKNOWN = 0x80000006;
  public static final int REP_ERR_SHUTDOWN = 0x80000007;
  public static final int REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
  public static final int REP_ERR_TOO_BIG = 0x80000009;

  // info types
  public static final int INFO_EXPORT = 0;
  public static final int INFO_NAME = 1;
  public static final int INFO_DESCRIPTION = 2;
  public static final int INFO_BLOCK_SIZE = 3;

  // transmission flags
  public static final int FLAG_HAS_FLAGS = 1;
  public static final int FLAG_READ_ONLY = 1 << 1;
  public static final int FLAG_SEND_FLUSH = 1 << 2;
  public static final int FLAG_SEND_FUA = 1 << 3;
  public static final int FLAG_ROTATIONAL = 1 << 4;
  public static final int FLAG_SEND_TRIM = 1 << 5;
  public static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
  public static final int FLAG_SEND_DF = 1 << 7;
  public static final int FLAG_CAN_MULTI_CONN = 1 << 8;

  // requests and replies
  public static final int REQUEST_MAGIC = 0x25609513;
  public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
  public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;
  public static final int REQUEST_HEADER = 28;

  // commands
  public static final int CMD_READ = 0;
  public static final int CMD_WRITE = 1;
  public static final int CMD_DISC = 2;
  public static final int CMD_FLUSH = 3;
  public static final int CMD_TRIM = 4;
  public static final int CMD_CACHE = 5;
  public static final int CMD_WRITE_ZEROES = 6;
  public static final int CMD_BLOCK_STATUS = 7;

  // command flags
  public static final int CMD_FLAG_FUA = 1;
  public static final int CMD_FLAG_NO_HOLE = 1 << 1;
  public static final int CMD_FLAG_DF = 1 << 2;
  public static final int CMD_FLAG_REQ_ONE = 1 << 3;
  public static final int CMD_FLAG_FAST_ZERO = 1 << 4;

  // structured reply
  public static final int REPLY_FLAG_DONE = 1;
  public static final int REPLY_TYPE_NONE = 0;
  public static final int REPLY_TYPE_OFFSET_DATA = 1;
  public static final int REPLY_TYPE_OFFSET_HOLE = 2;
  public static final int REPLY_TYPE_BLOCK_STATUS = 5;
  public static final int REPLY_TYPE_ERROR = (1 << 15) + 1;
  public static final int REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

  // base:allocation
  public static final int STATE_HOLE = 1;
  public static final int STATE_ZERO = 2;

  // errors
  public static final int EPERM = 1;
  public static final int EIO = 5;
  public static final int ENOMEM = 12;
  public static final int EINVAL = 22;
  public static final int ENOSPC = 28;
  public static final int EOVERFLOW = 75;
  public static final int ENOTSUP = 95;
  public static final int ESHUTDOWN = 108;

  /**
   * Largest READ/WRITE payload shade advertises (NBD_INFO_BLOCK_SIZE): 32 MiB. Clients that
   * agreed it are held to it; larger requests of clients that agreed no block sizes are served
   * in pieces.
   */
  public static final int MAX_PAYLOAD = 32 << 20;
  /** Longest export name or option payload shade reads during the handshake. */
  public static final int MAX_OPTION = 64 << 10;
  /** Longest string (export name, query) the protocol allows. */
  public static final int MAX_STRING = 4096;

  /** The meta context of allocation status. */
  public static final String CONTEXT_ALLOCATION = "base:allocation";
  /** Prefix of shade's changed-block contexts: {@code shade:changed:<snapshot>}. */
  public static final String CONTEXT_CHANGED = "shade:changed:";
  /** Status flag of {@code shade:changed:}: the extent differs from the snapshot. */
  public static final int STATE_CHANGED = 1;

  /** Name of a command for logs. */
  public static String commandName(int type) {
    switch (type) {
      case CMD_READ: return "READ";
      case CMD_WRITE: return "WRITE";
      case CMD_DISC: return "DISC";
      case CMD_FLUSH: return "FLUSH";
      case CMD_TRIM: return "TRIM";
      case CMD_CACHE: return "CACHE";
      case CMD_WRITE_ZEROES: return "WRITE_ZEROES";
      case CMD_BLOCK_STATUS: return "BLOCK_STATUS";
      default: return "command " + type;
    }
  }

  /** Name of a handshake option for logs. */
  public static String optionName(int option) {
    switch (option) {
      case OPT_EXPORT_NAME: return "EXPORT_NAME";
      case OPT_ABORT: return "ABORT";
      case OPT_LIST: return "LIST";
      case OPT_STARTTLS: return "STARTTLS";
      case OPT_INFO: return "INFO";
      case OPT_GO: return "GO";
      case OPT_STRUCTURED_REPLY: return "STRUCTURED_REPLY";
      case OPT_LIST_META_CONTEXT: return "LIST_META_CONTEXT";
      case OPT_SET_META_CONTEXT: return "SET_META_CONTEXT";
      default: return "option " + option;
    }
  }

  /** Name of an option reply type for logs. */
  public static String replyName(int type) {
    switch (type) {
      case REP_ACK: return "ACK";
      case REP_SERVER: return "SERVER";
      case REP_INFO: return "INFO";
      case REP_META_CONTEXT: return "META_CONTEXT";
      case REP_ERR_UNSUP: return "ERR_UNSUP";
      case REP_ERR_POLICY: return "ERR_POLICY";
      case REP_ERR_INVALID: return "ERR_INVALID";
      case REP_ERR_PLATFORM: return "ERR_PLATFORM";
      case REP_ERR_TLS_REQD: return "ERR_TLS_REQD";
      case REP_ERR_UNKNOWN: return "ERR_UNKNOWN";
      case REP_ERR_SHUTDOWN: return "ERR_SHUTDOWN";
      case REP_ERR_BLOCK_SIZE_REQD: return "ERR_BLOCK_SIZE_REQD";
      case REP_ERR_TOO_BIG: return "ERR_TOO_BIG";
      default: return "reply 0x" + Integer.toHexString(type);
    }
  }
}
