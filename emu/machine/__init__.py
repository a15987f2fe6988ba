"""Layer 5: the machine (boot, run loop, calls, memory, snapshots), its interrupt
controller, and the allocator APIs it offers (page allocator, slab, vmalloc, modules)."""
