/* memblock.h - the boot-time memory allocator (memblock.c). */
#ifndef KMEMU_MEMBLOCK_H
#define KMEMU_MEMBLOCK_H
#include <linux/types.h>

/* Static room per type; the arrays double from memblock itself when full. */
#define INIT_MEMBLOCK_REGIONS 128

struct memblock_region {
	u64 base;
	u64 size;
};

struct memblock_type {
	u32 cnt;
	u32 max;
	struct memblock_region *regions;
	const char *name;
};

struct memblock {
	u64 current_limit;
	struct memblock_type memory;
	struct memblock_type reserved;
};

extern struct memblock memblock;

int memblock_add(u64 base, u64 size);
int memblock_reserve(u64 base, u64 size);
u64 memblock_phys_alloc(u64 size, u64 align);
void *memblock_alloc(u64 size, u64 align);
u64 memblock_phys_mem_size(void);
u64 memblock_reserved_size(void);
u64 memblock_end_of_DRAM(void);
void memblock_dump(void);
void e820_setup(void);

#endif
