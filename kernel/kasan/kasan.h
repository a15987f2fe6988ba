/*
 * kasan/kasan.h - what the KASAN files share (not for the rest of the kernel:
 * that uses <kmemu/kasan.h>).
 */
#ifndef KASAN_INTERNAL_H
#define KASAN_INTERNAL_H
#include <kmemu/kasan.h>

extern int kasan_depth;

static inline u8 *kasan_mem_to_shadow(u64 a)
{
	return (u8 *)((a >> KASAN_SHADOW_SCALE_SHIFT) + KASAN_SHADOW_OFFSET);
}

bool kasan_has_shadow(u64 a);
bool kasan_shadow_mapped(u64 shadow_va);
u64 kasan_first_bad(u64 a, u64 n);
bool kasan_check_range(u64 addr, u64 size, bool write, u64 ip);
void kasan_report(u64 addr, u64 size, bool write, u64 ip);
void kasan_report_invalid_free(void *obj, u64 ip, enum kasan_kind kind);
/* The metadata of the slab object holding addr: its start and cache; NULL if none. */
struct kasan_meta *kasan_object_of(u64 addr, void **object, struct kmem_cache **cache);
void kasan_save_track(struct kasan_track *t, u64 rbp);

#endif
