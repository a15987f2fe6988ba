"""CLI, QEMU and pytest-plugin tests."""
