/*
 * <linux/kmemleak.h> - the kernel memory leak detector's API (Linux's names).
 *
 * With kmemleak=on on the command line every slab object, kmalloc, vmalloc
 * area and page-allocator block is tracked with its allocation stack, and a
 * scan (the host's m.kmemleak_scan()) reports the blocks nothing points to.
 * Code that keeps a block only in a form the scan cannot see (a physical
 * address, an encoded pointer, a pointer in memory that is not scanned)
 * tells kmemleak so:
 *   kmemleak_not_leak(ptr)   never report it; its contents are still scanned
 *   kmemleak_ignore(ptr)     never report it and never scan it
 *   kmemleak_no_scan(ptr)    report it if unreferenced, but do not scan it
 *   kmemleak_scan_area(ptr, size, gfp)  scan only these parts of its object
 * kmemleak_alloc/kmemleak_free track a block some other allocator handed out
 * (min_count: the references it needs to count as referenced; 0 = never a
 * leak).  Every function does nothing while kmemleak is off, and ptr must be
 * the start of a tracked block (or, for kmemleak_scan_area, inside one).
 */
#ifndef _LINUX_KMEMLEAK_H
#define _LINUX_KMEMLEAK_H
#include <linux/types.h>
#include <linux/gfp.h>

void kmemleak_alloc(const void *ptr, size_t size, int min_count, gfp_t gfp);
void kmemleak_free(const void *ptr);
void kmemleak_not_leak(const void *ptr);
void kmemleak_ignore(const void *ptr);
void kmemleak_no_scan(const void *ptr);
void kmemleak_scan_area(const void *ptr, size_t size, gfp_t gfp);

#endif
