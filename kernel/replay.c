/*
 * replay.c - run a recorded allocation trace inside the guest (m.replay()).
 *
 * Design: the host parses Linux's kmem trace text, turns each event into a
 * 16-byte struct kmemu_replay_op (<kmemu/abi.h>) and writes up to
 * KMEMU_REPLAY_RING of them into kmemu_replay_ring; one ordinary host call of
 * kmemu_replay_run(n) executes them back to back.  So the cost of an op is
 * the allocator's own instructions plus the loop's few (load the op, dispatch,
 * store the pointer), not a host round trip.
 *
 * Pointers never cross to the host per op: the trace's pointers are keys the
 * host maps to slot numbers, and the guest keeps the real pointer of each
 * live allocation in kmemu_replay_slots[slot] (a table the host vmallocs once
 * per replay and names here with kmemu_replay_slots/_nslots).  A free takes
 * the pointer from its slot.  kmem_cache ops name a cache by its index in
 * kmemu_replay_caches, which the host fills as it creates caches on first use.
 *
 * Failures: an allocation that returns NULL leaves NULL in its slot (its
 * free is then a no-op) and appends the op's index to kmemu_replay_failed, so
 * the host can count failures by GFP.  An op naming a slot or cache outside
 * the tables is not run and counted in kmemu_replay_bad (a host bug, never a
 * trace's).  As with m.batch(), kmemu_replay_done advances after each op, so
 * after an oops the host knows which op died; stops, budgets and interrupts
 * inside a replay need no code here because the entry is an ordinary call.
 */
#include <linux/build_bug.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <kmemu/abi.h>

struct kmemu_replay_op kmemu_replay_ring[KMEMU_REPLAY_RING];
struct kmem_cache *kmemu_replay_caches[KMEMU_REPLAY_CACHES];
u64 *kmemu_replay_slots;
u64 kmemu_replay_nslots;
u32 kmemu_replay_failed[KMEMU_REPLAY_RING];
u64 kmemu_replay_nfailed;
u64 kmemu_replay_done;
u64 kmemu_replay_bad;

static_assert(sizeof(struct kmemu_replay_op) == KMEMU_REPLAY_OP_BYTES,
	      "the host packs replay ops as KMEMU_REPLAY_OP_BYTES bytes");

/* One allocation op: the new pointer (NULL on failure) for its slot. */
static inline u64 replay_alloc(const struct kmemu_replay_op *op, struct kmem_cache *s)
{
	switch (op->type) {
	case KMEMU_REPLAY_KMALLOC:
		return (u64)kmalloc(op->size, op->gfp);
	case KMEMU_REPLAY_CACHE_ALLOC:
		return (u64)kmem_cache_alloc(s, op->gfp);
	default: /* KMEMU_REPLAY_PAGES_ALLOC */
		return (u64)alloc_pages(op->gfp, op->order);
	}
}

/* One free op on the pointer its slot holds (NULL: the allocation had failed). */
static inline void replay_free(const struct kmemu_replay_op *op, struct kmem_cache *s, u64 p)
{
	if (!p)
		return;
	switch (op->type) {
	case KMEMU_REPLAY_KFREE:
		kfree((void *)p);
		break;
	case KMEMU_REPLAY_CACHE_FREE:
		kmem_cache_free(s, (void *)p);
		break;
	default: /* KMEMU_REPLAY_PAGES_FREE */
		__free_pages((struct page *)p, op->order);
		break;
	}
}

/*
 * kmemu_replay_run - execute kmemu_replay_ring[0..n) in order (n clamped to
 * the ring).  Allocation types are odd, frees even (<kmemu/abi.h>).  Resets
 * kmemu_replay_nfailed and kmemu_replay_done; returns the number of ops run.
 */
u64 kmemu_replay_run(u64 n)
{
	u64 *slots = kmemu_replay_slots, nslots = kmemu_replay_nslots;

	if (n > KMEMU_REPLAY_RING)
		n = KMEMU_REPLAY_RING;
	kmemu_replay_nfailed = 0;
	kmemu_replay_done = 0;
	for (u64 i = 0; i < n; i++) {
		const struct kmemu_replay_op *op = &kmemu_replay_ring[i];
		struct kmem_cache *s = kmemu_replay_caches[op->cache % KMEMU_REPLAY_CACHES];

		if (unlikely(op->slot >= nslots || !op->type || op->type > KMEMU_REPLAY_PAGES_FREE)) {
			kmemu_replay_bad++;
		} else if (op->type & 1) {
			u64 p = replay_alloc(op, s);
			slots[op->slot] = p;
			if (unlikely(!p))
				kmemu_replay_failed[kmemu_replay_nfailed++] = (u32)i;
		} else {
			replay_free(op, s, slots[op->slot]);
			slots[op->slot] = 0;
		}
		kmemu_replay_done = i + 1;
	}
	return n;
}

/*
 * The emulator's limit, measured by the host on two loops it times:
 * kmemu_replay_spin_regs(n) turns an empty register-only loop (the emulator's
 * best case: one translated block chained to itself), kmemu_replay_spin(n)
 * runs n turns of kernel-shaped code: a call, loads and stores to memory, a
 * return (what allocator code is made of, and what costs an emulator most).
 * Both return n.
 */
static noinline u64 replay_spin_step(u64 *buf, u64 i)
{
	buf[i & 7] += i;
	return buf[(i + 3) & 7];
}

u64 kmemu_replay_spin(u64 n)
{
	u64 buf[8] = { 0 };
	u64 acc = 0;

	for (u64 i = 0; i < n; i++)
		acc += replay_spin_step(buf, i);
	__asm__ __volatile__("" :: "r"(acc));
	return n;
}

u64 kmemu_replay_spin_regs(u64 n)
{
	u64 i;

	for (i = 0; i < n; i++)
		__asm__ __volatile__("" : "+r"(i));
	return i;
}
