"""GDB stub tests."""
