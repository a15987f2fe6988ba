/*
 * slab/select.c - choose the slab allocator at boot: slab=slub|slab|slob.
 *
 * The three allocators live in one image.  SLUB (kernel/slab/slub.c, kmalloc.c)
 * owns the public names (kmalloc, kfree, kmem_cache_alloc, ...), so a kernel
 * that keeps SLUB runs exactly the code the compiler made, with no dispatch.
 * For SLAB or SLOB, slab_select() rewrites the first five bytes of each
 * public entry point into `jmp <the chosen allocator's function>` through
 * text_poke(), before kmem_cache_init() (an entry itself) and before the
 * image becomes read-only: Linux's static_call, applied once.  The chosen
 * allocator pays one jmp per call; callers, modules and the host call the
 * same addresses whatever was chosen.
 *
 * slab_entries[] is the one list of entry points: a SLUB function and its
 * SLAB and SLOB counterparts, same prototype (the compiler checks it through
 * the typed initialiser macro).  A static-key site inside a patched range
 * would be clobbered, so slab_select() refuses to patch (panics) if the
 * jump table has one there.
 *
 * An unknown value is not silently ignored (Linux would ignore an unknown
 * parameter): the boot log says so and SLUB stays.  KASAN builds support only
 * SLUB (the shadow hooks are SLUB's); they say so and keep SLUB too.
 */
#include <linux/bug.h>
#include <linux/jump_label.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kmemu/log.h>
#include <kmemu/slab_common.h>
#include <kmemu/slub.h>
#include <kmemu/text_patching.h>
#include "slab_alloc.h"

u8 slab_allocator = SLAB_ALLOCATOR_SLUB;
static const char *const slab_allocator_names[] = { "slub", "slab", "slob" };

struct slab_entry {
	const char *name;
	void *impl[3]; /* indexed by enum slab_allocator_id */
};

/* The same prototype for all three, or the initialiser does not compile. */
#define SLAB_ENTRY(fn)                                                                    \
	{ #fn, { (void *)(__typeof__(&fn))fn, (void *)(__typeof__(&fn))slab_##fn,         \
		 (void *)(__typeof__(&fn))slob_##fn } }

void kmem_cache_init(void);
u64 kmem_cache_shrink_all(void);

static const struct slab_entry slab_entries[] = {
	SLAB_ENTRY(kmem_cache_init),
	SLAB_ENTRY(kmem_cache_create),
	SLAB_ENTRY(kmem_cache_destroy),
	SLAB_ENTRY(kmem_cache_shrink),
	SLAB_ENTRY(kmem_cache_shrink_all),
	SLAB_ENTRY(kmem_cache_alloc),
	SLAB_ENTRY(kmem_cache_zalloc),
	SLAB_ENTRY(kmem_cache_free),
	SLAB_ENTRY(kmem_cache_size),
	SLAB_ENTRY(kmem_cache_alloc_bulk),
	SLAB_ENTRY(kmem_cache_free_bulk),
	SLAB_ENTRY(kmalloc),
	SLAB_ENTRY(kfree),
	SLAB_ENTRY(ksize),
	SLAB_ENTRY(krealloc),
	SLAB_ENTRY(kmalloc_size_roundup),
	SLAB_ENTRY(validate_slab_cache),
	SLAB_ENTRY(kmem_cache_listed),
	SLAB_ENTRY(kmem_cache_errors),
	SLAB_ENTRY(kzalloc),
	SLAB_ENTRY(kmalloc_array),
	SLAB_ENTRY(kcalloc),
};

/* No static-key site may overlap the 5 bytes a patch writes at fn. */
static void check_no_key_site(const struct slab_entry *e, u64 fn)
{
	extern struct jump_entry __start___jump_table[], __stop___jump_table[];
	for (struct jump_entry *j = __start___jump_table; j < __stop___jump_table; j++)
		if (j->code + 5 > fn && j->code < fn + 5)
			panic("slab=%s: %s starts with a static-key site; cannot patch it",
			      slab_allocator_names[slab_allocator], e->name);
}

/* fn's first five bytes become `jmp target`. */
static void patch_entry(const struct slab_entry *e)
{
	u64 fn = (u64)e->impl[SLAB_ALLOCATOR_SLUB];
	u64 target = (u64)e->impl[slab_allocator];
	s32 rel = (s32)(target - (fn + 5));
	u8 insn[5] = { 0xe9, (u8)rel, (u8)(rel >> 8), (u8)(rel >> 16), (u8)(rel >> 24) };
	check_no_key_site(e, fn);
	text_poke((void *)fn, insn, sizeof(insn));
}

/* Which allocator slab= names; SLUB (with a log line) when it names none. */
static u8 parse_slab_param(const char *v)
{
	size_t n = 0;
	while (v[n] && v[n] != ' ')
		n++;
	for (u8 i = 0; i < ARRAY_SIZE(slab_allocator_names); i++)
		if (n == 4 && !strncmp(v, slab_allocator_names[i], 4))
			return i;
	printk("slab=%.*s: unknown slab allocator (slub, slab or slob); using slub\n", (int)n, v);
	return SLAB_ALLOCATOR_SLUB;
}

void slab_select(const char *cmdline)
{
	const char *v = cmdline_find(cmdline, "slab");
	if (!v)
		return;
	u8 choice = parse_slab_param(v);
#ifdef CONFIG_KASAN
	if (choice != SLAB_ALLOCATOR_SLUB) {
		printk("slab=%s: KASAN builds support only slub; using slub\n",
		       slab_allocator_names[choice]);
		choice = SLAB_ALLOCATOR_SLUB;
	}
#endif
	slab_allocator = choice;
	if (choice == SLAB_ALLOCATOR_SLUB)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(slab_entries); i++)
		patch_entry(&slab_entries[i]);
	printk("slab: using %s (slab=%s), %zu entry points patched\n",
	       choice == SLAB_ALLOCATOR_SLAB ? "SLAB" : "SLOB", slab_allocator_names[choice],
	       ARRAY_SIZE(slab_entries));
}

/* SLUB's kmem_cache_listed: is a cache of this name on slab_caches? */
bool kmem_cache_listed(const char *name)
{
	struct kmem_cache *c;
	list_for_each_entry(c, &slab_caches, list)
		if (!strcmp(c->name, name))
			return true;
	return false;
}

/* SLUB's kmem_cache_errors: its debug reports so far. */
u64 kmem_cache_errors(struct kmem_cache *s)
{
	return s->errors;
}
