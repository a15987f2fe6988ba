"""Page allocator tests (issue 3)."""
