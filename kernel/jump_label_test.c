/*
 * jump_label_test.c - test hooks: a static key of each kind and functions
 * whose result says which way their site went, so the host can toggle a
 * key at run time and watch the code change both ways
 * (tests/kernel/test_jump_label.py).
 */
#include <linux/jump_label.h>
#include <linux/types.h>

DEFINE_STATIC_KEY_FALSE(kmemu_test_key_false);
DEFINE_STATIC_KEY_TRUE(kmemu_test_key_true);

/* 1 when the off-by-default key is on (its site: nop at build time). */
noinline int kmemu_test_branch_unlikely(void)
{
	if (static_branch_unlikely(&kmemu_test_key_false))
		return 1;
	return 0;
}

/* 1 when the off-by-default key is on, seen through the jmp-at-build-time site. */
noinline int kmemu_test_branch_likely_false(void)
{
	if (static_branch_likely(&kmemu_test_key_false))
		return 1;
	return 0;
}

/* 1 while the on-by-default key is on. */
noinline int kmemu_test_branch_likely(void)
{
	if (static_branch_likely(&kmemu_test_key_true))
		return 1;
	return 0;
}

/* 1 while the on-by-default key is on (jmp-at-build-time site). */
noinline int kmemu_test_branch_unlikely_true(void)
{
	if (static_branch_unlikely(&kmemu_test_key_true))
		return 1;
	return 0;
}

/* which: 0 the false key, 1 the true key; on: 0 or 1.  Returns static_key_enabled(). */
int kmemu_test_static_key_set(int which, int on)
{
	if (which) {
		if (on)
			static_branch_enable(&kmemu_test_key_true);
		else
			static_branch_disable(&kmemu_test_key_true);
		return static_key_enabled(&kmemu_test_key_true);
	}
	if (on)
		static_branch_enable(&kmemu_test_key_false);
	else
		static_branch_disable(&kmemu_test_key_false);
	return static_key_enabled(&kmemu_test_key_false);
}

/* A key with refcounted users (static_branch_inc/dec), as the allocators' hooks keys. */
DEFINE_STATIC_KEY_FALSE(kmemu_test_key_shared);

/* 1 while any user holds the shared key. */
noinline int kmemu_test_branch_shared(void)
{
	if (static_branch_unlikely(&kmemu_test_key_shared))
		return 1;
	return 0;
}

/* up: one user more (1) or fewer (0).  Returns the key's count of users. */
int kmemu_test_static_key_get(int up)
{
	if (up)
		static_branch_inc(&kmemu_test_key_shared);
	else
		static_branch_dec(&kmemu_test_key_shared);
	return READ_ONCE(kmemu_test_key_shared.key.enabled);
}
