"""Firmware-level emulation: what a PC BIOS reports to the kernel."""
