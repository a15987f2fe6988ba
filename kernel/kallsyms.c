/*
 * kallsyms.c - address -> "function+0xoff/0xsize" from the table the build
 * appends (kallsyms.h); addresses in a loadable module are looked up in its
 * own symbol table (module.c) and printed with " [module]".  The table is read-only after link; lookups are a
 * binary search and need no lock, so the oops path can use them.
 */
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/kallsyms.h>
#include <kmemu/log.h>
#include <kmemu/module.h>

struct ksym {
	u64 addr;
	u32 size;
	u32 name_off;
};

extern char __kallsyms_start[], __kallsyms_end[];

static u64 ksym_count(void)
{
	if (__kallsyms_end - __kallsyms_start < 8)
		return 0;
	return *(u64 *)__kallsyms_start;
}

static const struct ksym *ksym_table(void)
{
	return (const struct ksym *)(__kallsyms_start + 8);
}

static const char *ksym_name(const struct ksym *s)
{
	return (const char *)(ksym_table() + ksym_count()) + s->name_off;
}

const char *kallsyms_lookup(u64 addr, u64 *offset, u64 *size)
{
	u64 n = ksym_count(), lo = 0, hi = n;
	const struct ksym *t = ksym_table();

	/* last symbol with t.addr <= addr */
	while (lo < hi) {
		u64 mid = (lo + hi) / 2;
		if (t[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct ksym *s = &t[lo - 1];
	u64 sz = s->size ? s->size : 1;
	if (addr >= s->addr + sz && !(lo < n && addr < t[lo].addr && !s->size))
		return NULL;
	if (offset)
		*offset = addr - s->addr;
	if (size)
		*size = s->size;
	return ksym_name(s);
}

u64 kallsyms_lookup_name(const char *name)
{
	const struct ksym *t = ksym_table();
	for (u64 i = 0; i < ksym_count(); i++)
		if (!strcmp(ksym_name(&t[i]), name))
			return t[i].addr;
	return 0;
}

/* "name+0xoff/0xsize", with " [module]" for an address inside a module, as %pS prints. */
int sprint_symbol(char *buf, size_t len, u64 addr)
{
	u64 off, size;
	const char *modname = NULL;
	const char *name = kallsyms_lookup(addr, &off, &size);
	if (!name)
		name = module_address_lookup(addr, &size, &off, &modname);
	if (!name)
		return snprintf(buf, len, "0x%llx", addr);
	if (modname)
		return snprintf(buf, len, "%s+0x%llx/0x%llx [%s]", name, off, size, modname);
	return snprintf(buf, len, "%s+0x%llx/0x%llx", name, off, size);
}
