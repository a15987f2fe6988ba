/* <linux/types.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/types.h>

_Static_assert(sizeof(u8) == 1 && sizeof(u16) == 2 && sizeof(u32) == 4 && sizeof(u64) == 8, "u");
_Static_assert(sizeof(s64) == 8 && sizeof(size_t) == 8 && sizeof(gfp_t) == 4 && sizeof(slab_flags_t) == 4, "");
_Static_assert(__builtin_types_compatible_p(u64, unsigned long long), "u64 as on x86-64 Linux");
_Static_assert(__builtin_types_compatible_p(size_t, unsigned long), "size_t");
_Static_assert(sizeof(struct list_head) == 16 && sizeof(struct hlist_head) == 8, "lists");
bool t(phys_addr_t a, uintptr_t b, ssize_t c, loff_t d, pgoff_t e, uint32_t f) { return a + b + (u64)c + (u64)d + e + f; }
