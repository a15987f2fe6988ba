"""Layer 6: front ends (CLI, REPL debugger, gdb stub, benchmarks, QEMU runner, pytest plugin)."""
