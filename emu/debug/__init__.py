"""Layer 5: the debugging engine (breakpoints, watchpoints, stops, stepping, sessions).

The front ends that drive it, the REPL and the gdb stub, are in ``emu.frontend``.
"""
