/**
 * The freeze lease: a guard process that runs the writers' freeze and thaw for one snapshot and
 * thaws them by itself when the lease's limit passes or the requestor dies, so that no
 * filesystem or database stays frozen (DESIGN.md, "Requestor protocol").
 */
package dev.shade.requestor.lease;
