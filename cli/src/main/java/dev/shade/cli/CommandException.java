package dev.shade.cli;

/** A command cannot be carried out; its message is the one line shown to the operator (exit 1). */
final class CommandException extends Exception {
  private static final long serialVersionUID = 1L;

  CommandException(String message) {
    super(message);
  }
}
