/*
 * kmemu/xorshift.h - the kernel's one pseudo-random step (Marsaglia's xorshift64).
 *
 * kmemu has no entropy and wants none: every run must repeat exactly, so each
 * user keeps its own fixed-seed state (SLUB's per-cache freelist pointer salt,
 * fault injection's probability= draws) and steps it with this.
 */
#ifndef KMEMU_XORSHIFT_H
#define KMEMU_XORSHIFT_H

#include <linux/types.h>

/* The seed every state starts from (the 64-bit golden ratio). */
#define XORSHIFT_SEED 0x9e3779b97f4a7c15ULL

/* Advance *state one step and return the new value (never 0 from a nonzero state). */
static inline u64 xorshift64(u64 *state)
{
	u64 x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

#endif
