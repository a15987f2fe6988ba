/*
 * <linux/jump_label.h> - static keys: branches that cost a 5-byte nop.
 *
 * Linux's API (6.1):
 *
 *   DEFINE_STATIC_KEY_FALSE(key);     off at boot
 *   DEFINE_STATIC_KEY_TRUE(key);      on at boot
 *   if (static_branch_unlikely(&key)) ...   the off state is the fast one
 *   if (static_branch_likely(&key)) ...     the on state is the fast one
 *   static_branch_enable(&key); static_branch_disable(&key);
 *   static_branch_inc(&key); static_branch_dec(&key);   refcounted users
 *   static_key_enabled(&key)
 *
 * How (x86, as Linux): every static_branch_*() site is an `asm goto` that
 * emits either a 5-byte nop (0f 1f 44 00 00) or a 5-byte `jmp rel32` to the
 * out-of-line block, plus one struct jump_entry in section __jump_table.
 * kernel.ld keeps the kernel's table between __start___jump_table and
 * __stop___jump_table; a module's table is its own __jump_table section.
 * static_branch_enable/disable rewrite the 5 bytes of every site of the key
 * through text_poke() (the kernel text stays read-only, <kmemu/text_patching.h>);
 * jump_label_init() at boot checks the table and patches the sites of keys
 * a boot parameter turned on before it ran.
 *
 * kmemu's entry is ABSOLUTE (three u64: code, target, key | branch), not
 * Linux's 32-bit relative form, like the export table: the loader and the
 * host (emu/kernel/jump_label.py) read it without relocating anything.  Bit 0
 * of `key` is the branch direction the site was compiled for (Linux's
 * JUMP_TYPE_TRUE); the site holds the jmp exactly when enabled != branch,
 * so the bytes the compiler emitted match the key's initial value.  A key keeps no list of its sites: a toggle scans the
 * tables (a few dozen entries), which keeps a key 4 bytes like an int.
 */
#ifndef _LINUX_JUMP_LABEL_H
#define _LINUX_JUMP_LABEL_H
#include <linux/compiler.h>
#include <linux/types.h>

struct static_key {
	int enabled; /* 0 off; on: 1, or the number of users (static_branch_inc) */
};
struct static_key_true {
	struct static_key key;
};
struct static_key_false {
	struct static_key key;
};

/* One site, 24 bytes in __jump_table (absolute addresses, see above). */
struct jump_entry {
	unsigned long code;   /* address of the 5-byte nop/jmp */
	unsigned long target; /* where the jmp goes */
	unsigned long key;    /* struct static_key *, bit 0: the site's branch */
};

#define JUMP_LABEL_NOP_SIZE 5

#define STATIC_KEY_INIT_TRUE { .enabled = 1 }
#define STATIC_KEY_INIT_FALSE { .enabled = 0 }
#define STATIC_KEY_TRUE_INIT (struct static_key_true){ .key = STATIC_KEY_INIT_TRUE }
#define STATIC_KEY_FALSE_INIT (struct static_key_false){ .key = STATIC_KEY_INIT_FALSE }

#define DEFINE_STATIC_KEY_TRUE(name) struct static_key_true name = STATIC_KEY_TRUE_INIT
#define DEFINE_STATIC_KEY_FALSE(name) struct static_key_false name = STATIC_KEY_FALSE_INIT
#define DECLARE_STATIC_KEY_TRUE(name) extern struct static_key_true name
#define DECLARE_STATIC_KEY_FALSE(name) extern struct static_key_false name

/* The site's table entry: 8-aligned, after the instruction at label 1. */
#define __JUMP_TABLE_ENTRY(key_op, branch_op)                  \
	".pushsection __jump_table, \"aw\"\n\t"                 \
	".balign 8\n\t"                                         \
	".quad 1b, %l[l_yes], " key_op " + " branch_op "\n\t"   \
	".popsection\n\t"

/* A nop at build time: true once patched to jump. */
static __always_inline bool arch_static_branch(struct static_key *key, bool branch)
{
	__asm__ goto("1: .byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
		     __JUMP_TABLE_ENTRY("%c0", "%c1")
		     : : "i"(key), "i"(branch) : : l_yes);
	return false;
l_yes:
	return true;
}

/* A jmp at build time: false once patched to a nop. */
static __always_inline bool arch_static_branch_jump(struct static_key *key, bool branch)
{
	__asm__ goto("1: .byte 0xe9\n\t.long %l[l_yes] - 2f\n2:\n\t"
		     __JUMP_TABLE_ENTRY("%c0", "%c1")
		     : : "i"(key), "i"(branch) : : l_yes);
	return false;
l_yes:
	return true;
}

/* Linux gives a link error for another type; kmemu a compile-time one. */
#define __static_branch_check(x)                                                       \
	_Static_assert(__builtin_types_compatible_p(typeof(*(x)), struct static_key_true) || \
		       __builtin_types_compatible_p(typeof(*(x)), struct static_key_false), \
		       "static_branch_*() takes a struct static_key_true/false *")

#define static_branch_likely(x)                                                        \
	({                                                                             \
		bool branch;                                                           \
		__static_branch_check(x);                                              \
		if (__builtin_types_compatible_p(typeof(*(x)), struct static_key_true))    \
			branch = !arch_static_branch(&(x)->key, true);                 \
		else if (__builtin_types_compatible_p(typeof(*(x)), struct static_key_false)) \
			branch = !arch_static_branch_jump(&(x)->key, true);            \
		else                                                                   \
			branch = false;                                                \
		likely(branch);                                                        \
	})

#define static_branch_unlikely(x)                                                      \
	({                                                                             \
		bool branch;                                                           \
		__static_branch_check(x);                                              \
		if (__builtin_types_compatible_p(typeof(*(x)), struct static_key_true))    \
			branch = arch_static_branch_jump(&(x)->key, false);            \
		else if (__builtin_types_compatible_p(typeof(*(x)), struct static_key_false)) \
			branch = arch_static_branch(&(x)->key, false);                 \
		else                                                                   \
			branch = false;                                                \
		unlikely(branch);                                                      \
	})

static inline bool static_key_enabled_raw(const struct static_key *key)
{
	return READ_ONCE(key->enabled) > 0;
}

#define static_key_enabled(x) static_key_enabled_raw(&(x)->key)

/* Turn a key on/off, patching every site (kernel and loaded modules); may not
 * be called from interrupt context.  Turning it to the state it has is a no-op. */
void static_key_enable(struct static_key *key);
void static_key_disable(struct static_key *key);

#define static_branch_enable(x) static_key_enable(&(x)->key)
#define static_branch_disable(x) static_key_disable(&(x)->key)

/*
 * Refcounted users (Linux's static_key_slow_inc/dec): a key shared by several
 * features takes one count per feature that is on; its sites jump while any
 * count is held.  Do not mix with enable/disable on the same key.
 */
void static_key_slow_inc(struct static_key *key);
void static_key_slow_dec(struct static_key *key);

#define static_branch_inc(x) static_key_slow_inc(&(x)->key)
#define static_branch_dec(x) static_key_slow_dec(&(x)->key)

#endif
