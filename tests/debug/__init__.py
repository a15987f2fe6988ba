"""The debugging engine (emu/debug/): breakpoints, watchpoints, stepping, the session,
frame variables."""
