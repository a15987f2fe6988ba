"""Layer 6: the built-in debugger (``kmemu debug``), a gdb-like REPL over a DebugSession.

* :mod:`emu.frontend.debugger.commands` parses a line into a typed command (no machine needed);
* :mod:`emu.frontend.debugger.examine` formats ``x`` and ``info registers``;
* :mod:`emu.frontend.debugger.repl` executes commands and prints what gdb would (``Repl``,
  ``run_debugger``);
* :mod:`emu.frontend.debugger.terminal` adds readline history, completion and Ctrl-C.
"""
