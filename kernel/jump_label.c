/*
 * jump_label.c - static keys: patch every site of a key when it changes.
 *
 * The API and the table format are in <linux/jump_label.h>.  A site holds
 * either the 5-byte nop 0f 1f 44 00 00 or `e9 rel32` jumping to its entry's
 * target; it must hold the jmp exactly when key->enabled != the entry's
 * branch bit.  Tables: the kernel's (__start___jump_table..__stop___jump_table,
 * kernel.ld) and each loaded module's own __jump_table section (struct
 * module's jump_entries).  Keys keep no list of sites: a toggle scans every
 * table (tens of entries), Linux sorts its table by key instead.
 *
 *   jump_label_init()      boot, after text_poke_init(): checks every kernel
 *                          site holds one of the two encodings (BUG if not)
 *                          and patches those whose key changed before it ran
 *   static_key_enable/disable   flip the key, then patch its sites with
 *                          text_poke() (the text stays read-only)
 *   static_key_slow_inc/dec     the refcounted form (Linux's): each user of a
 *                          key that several features share takes one count;
 *                          the sites change only on 0 -> 1 and 1 -> 0
 *   jump_label_module_init(mod) a module's sites to its keys' current state,
 *                          at load before its init runs
 *   jump_label_module_drop_init(mod, lo, hi)  forget sites in freed init text
 *
 * Process context only (text_poke turns interrupts off around each write);
 * one CPU, so a toggle needs no lock against another toggle.
 */
#include <linux/bug.h>
#include <linux/export.h>
#include <linux/jump_label.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/module.h>
#include <kmemu/text_patching.h>

extern struct jump_entry __start___jump_table[], __stop___jump_table[];
static bool jump_label_initialized;
u64 jump_label_patched; /* sites rewritten so far (boot and run time) */

static const u8 jump_nop5[JUMP_LABEL_NOP_SIZE] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

static struct static_key *entry_key(const struct jump_entry *e)
{
	return (struct static_key *)(e->key & ~1UL);
}

/* The site must jump: enabled differs from the branch it was compiled for. */
static bool entry_jumps(const struct jump_entry *e)
{
	return static_key_enabled_raw(entry_key(e)) != (bool)(e->key & 1);
}

/* The 5 bytes a site holds in state `jump`. */
static void entry_code(const struct jump_entry *e, bool jump, u8 code[JUMP_LABEL_NOP_SIZE])
{
	if (!jump) {
		memcpy(code, jump_nop5, JUMP_LABEL_NOP_SIZE);
		return;
	}
	s32 rel = (s32)(e->target - (e->code + JUMP_LABEL_NOP_SIZE));
	code[0] = 0xe9;
	memcpy(code + 1, &rel, 4);
}

/* Rewrite the site when it differs from what its key wants; BUG on foreign bytes. */
static void entry_update(const struct jump_entry *e)
{
	u8 want[JUMP_LABEL_NOP_SIZE], other[JUMP_LABEL_NOP_SIZE];
	bool jump = entry_jumps(e);
	entry_code(e, jump, want);
	if (!memcmp((void *)e->code, want, sizeof(want)))
		return;
	entry_code(e, !jump, other);
	if (memcmp((void *)e->code, other, sizeof(other)))
		panic("jump_label: unexpected bytes at %pS (0x%lx)", (void *)e->code, e->code);
	text_poke((void *)e->code, want, sizeof(want));
	jump_label_patched++;
}

static void table_update(struct jump_entry *start, struct jump_entry *stop,
			 const struct static_key *key)
{
	for (struct jump_entry *e = start; e < stop; e++)
		if (e->code && (!key || entry_key(e) == key))
			entry_update(e);
}

static void key_update(struct static_key *key)
{
	table_update(__start___jump_table, __stop___jump_table, key);
	struct module *mod;
	list_for_each_entry(mod, &modules, list)
		table_update(mod->jump_entries, mod->jump_entries + mod->num_jump_entries, key);
}

void jump_label_init(void)
{
	table_update(__start___jump_table, __stop___jump_table, NULL);
	jump_label_initialized = true;
}

static void static_key_set(struct static_key *key, int enabled)
{
	WARN(!jump_label_initialized, "static key %pS changed before jump_label_init()", key);
	if (READ_ONCE(key->enabled) == enabled)
		return;
	WRITE_ONCE(key->enabled, enabled);
	if (jump_label_initialized)
		key_update(key);
}

void static_key_enable(struct static_key *key)
{
	static_key_set(key, 1);
}
EXPORT_SYMBOL_GPL(static_key_enable);

void static_key_disable(struct static_key *key)
{
	static_key_set(key, 0);
}
EXPORT_SYMBOL_GPL(static_key_disable);

/* One more user: the sites jump from the first one on. */
void static_key_slow_inc(struct static_key *key)
{
	int v = READ_ONCE(key->enabled);
	if (v > 0) {
		WRITE_ONCE(key->enabled, v + 1);
		return;
	}
	static_key_set(key, 1);
}
EXPORT_SYMBOL_GPL(static_key_slow_inc);

/* One user fewer: the sites go back to their off state with the last one. */
void static_key_slow_dec(struct static_key *key)
{
	int v = READ_ONCE(key->enabled);
	if (WARN(v <= 0, "static key %pS: static_key_slow_dec() with no user", key))
		return;
	if (v > 1) {
		WRITE_ONCE(key->enabled, v - 1);
		return;
	}
	static_key_set(key, 0);
}
EXPORT_SYMBOL_GPL(static_key_slow_dec);

/* A module's sites to its keys' current state (its text is not live yet). */
void jump_label_module_init(struct module *mod)
{
	table_update(mod->jump_entries, mod->jump_entries + mod->num_jump_entries, NULL);
}

/* The module's init text [lo, hi) is going away: its sites are forgotten. */
void jump_label_module_drop_init(struct module *mod, u64 lo, u64 hi)
{
	for (u32 i = 0; i < mod->num_jump_entries; i++)
		if (mod->jump_entries[i].code >= lo && mod->jump_entries[i].code < hi)
			mod->jump_entries[i].code = 0;
}
