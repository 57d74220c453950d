/**
 * The coordinator on the production host: writers, freeze/thaw, snapshot sets, schedule,
 * retention and rollback. Built on {@link dev.shade.provider.Volume}.
 */
package dev.shade.requestor;
