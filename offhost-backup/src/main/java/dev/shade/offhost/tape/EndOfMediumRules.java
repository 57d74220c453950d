package dev.shade.offhost.tape;

/**
 * The early-warning state machine that both back-ends share, so that they report the end of the
 * medium identically (the rules of {@link TapeDrive}'s class comment, after st.rst).
 *
 * <p>Not thread-safe: owned by one drive.
 */
final class EndOfMediumRules {
  /*
   *   NORMAL --(a record write reaches the zone)--> PENDING
   *   PENDING --(next record write: EarlyWarningException, nothing written)--> TRAILER
   *   TRAILER --(record that fits the allowance: written, allowance shrinks)--> TRAILER
   *   TRAILER --(record that does not fit: EndOfMediumException)--> END
   *   END --(any record write: EndOfMediumException)--> END
   *   any --(positioning)--> NORMAL
   *
   * The virtual drive knows when a write reaches the zone and calls reachedEarlyWarning(); the
   * st drive learns it from the driver's ENOSPC on the next write and calls it just before
   * checkWrite(), which then throws the same EarlyWarningException.
   */

  enum State { NORMAL, PENDING, TRAILER, END }

  /** How many record bytes the trailer may hold. */
  private final long trailerBytes;
  /** Where the drive is in the rules. */
  private State state = State.NORMAL;
  /** Bytes of records still allowed in TRAILER. */
  private long trailerLeft;

  EndOfMediumRules(long trailerBytes) {
    if (trailerBytes <= 0) {
      throw new IllegalArgumentException("trailer allowance must be positive: " + trailerBytes);
    }
    this.trailerBytes = trailerBytes;
  }

  long trailerBytes() {
    return trailerBytes;
  }

  State state() {
    return state;
  }

  /** Bytes of records the trailer still takes (meaningful in TRAILER). */
  long trailerLeft() {
    return state == State.TRAILER ? trailerLeft : state == State.END ? 0 : trailerBytes;
  }

  /**
   * Called before a record of {@code length} bytes goes to the medium: throws when the rules
   * say it must not; otherwise returns and the caller writes it, then calls {@link #wrote}.
   */
  void checkWrite(int length, Object where) throws TapeException {
    switch (state) {
      case PENDING:
        state = State.TRAILER;
        trailerLeft = trailerBytes;
        throw new EarlyWarningException("early warning: the tape passed its early-warning mark; this record of "
            + length + " bytes was not written, " + trailerBytes + " bytes of trailer remain: " + where);
      case TRAILER:
        if (length > trailerLeft) {
          state = State.END;
          throw new EndOfMediumException("end of medium: a record of " + length + " bytes does not fit the "
              + trailerLeft + " bytes left of the trailer allowance; nothing written: " + where);
        }
        return;
      case END:
        throw new EndOfMediumException("end of medium: no room for a record of " + length + " bytes: " + where);
      default:
        return;
    }
  }

  /** A record of {@code length} bytes was written. */
  void wrote(int length) {
    if (state == State.TRAILER) {
      trailerLeft -= length;
    }
  }

  /** The record just written reached the early-warning zone (ignored once reported). */
  void reachedEarlyWarning() {
    if (state == State.NORMAL) {
      state = State.PENDING;
    }
  }

  /** The medium ended before the allowance did (st: ENOSPC twice, or EIO, in the trailer). */
  void physicalEnd() {
    state = State.END;
  }

  /** The drive moved: the rules start again from the new position. */
  void reset() {
    state = State.NORMAL;
  }
}
