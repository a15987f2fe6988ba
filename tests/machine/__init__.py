"""Machine-level tests: boot, calls, interrupts, faults, snapshots."""
