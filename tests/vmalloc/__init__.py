"""vmalloc tests (issue 5, first part)."""
