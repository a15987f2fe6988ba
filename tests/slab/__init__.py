"""Slab allocator and kmalloc tests (issue 4)."""
