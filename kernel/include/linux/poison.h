/*
 * <linux/poison.h> - values written into freed or unused memory so a use
 * after free faults, or is recognised, at once.  x86-64 Linux adds
 * POISON_POINTER_DELTA (CONFIG_ILLEGAL_POINTER_VALUE, a non-canonical
 * address) to the list poisons, so LIST_POISON1 is 0xdead000000000100.
 */
#ifndef _LINUX_POISON_H
#define _LINUX_POISON_H

#define POISON_POINTER_DELTA 0xdead000000000000UL

/* list_del() leaves these in next/prev; hlist_del() too. */
#define LIST_POISON1 ((void *)0x100 + POISON_POINTER_DELTA)
#define LIST_POISON2 ((void *)0x122 + POISON_POINTER_DELTA)

/* SLUB red zones and object poisoning (slab_debug=Z / =P). */
#define SLUB_RED_INACTIVE 0xbb /* red zone of a free object */
#define SLUB_RED_ACTIVE 0xcc   /* red zone of an allocated object */
#define POISON_INUSE 0x5a      /* allocated, never written; also slab padding */
#define POISON_FREE 0x6b       /* freed object */
#define POISON_END 0xa5        /* last byte of a poisoned object */

#endif
