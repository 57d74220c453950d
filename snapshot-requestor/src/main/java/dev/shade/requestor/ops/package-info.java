/**
 * The volume and snapshot commands as JSON documents ({@code VolumeCommands}), and the image
 * files they read and write ({@code ImageFiles}): one implementation whether a {@code shade}
 * command opened the volume itself or the agent that holds it runs the command.
 */
package dev.shade.requestor.ops;
