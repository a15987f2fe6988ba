"""Tests of the firmware layer (e820 memory map)."""
