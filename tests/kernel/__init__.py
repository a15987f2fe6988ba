"""Tests of the kernel-knowledge layer (page-table walker)."""
