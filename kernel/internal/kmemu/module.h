/*
 * module.h - loadable modules inside the kernel (module.c).
 *
 * A module is one relocatable x86-64 ELF (ET_REL).  load_module() lays its
 * SHF_ALLOC sections out in one area of the module range [MODULES_VADDR,
 * MODULES_END), text first, then read-only data, then writable data and bss,
 * then a copy of its symbol and string tables (for kallsyms), each group
 * page-aligned so it gets its own page permissions, as Linux does with
 * CONFIG_STRICT_MODULE_RWX.  .init* sections get a second area laid out the
 * same way (init_layout), freed once module_init succeeded.  The host (emu/machine/modules.py) reads this struct
 * through DWARF: keep field names stable.
 */
#ifndef KMEMU_MODULE_H
#define KMEMU_MODULE_H
#include <linux/types.h>
#include <linux/list.h>
#include <kmemu/elf.h>

#define MODULE_NAME_LEN 56 /* Linux: 64 - sizeof(unsigned long) */

enum module_state {
	MODULE_STATE_LIVE,	/* normal state */
	MODULE_STATE_COMING,	/* running its init */
	MODULE_STATE_GOING,	/* running its exit or a failed init's undo */
	MODULE_STATE_UNFORMED,	/* still being laid out */
};

/* Where one module's memory is: [base, base+size); text, then ro, then rw. */
struct module_layout {
	void *base;
	u32 size;	/* everything, symbol tables included (/proc/modules' size) */
	u32 text_size;	/* executable: [base, base+text_size) */
	u32 ro_size;	/* text + read-only data */
	u32 pad;
};

struct module {
	enum module_state state;
	u32 taints;
	struct list_head list;		/* on `modules` */
	char name[MODULE_NAME_LEN];
	char srcversion[25];		/* the build's hash of the sources (.modinfo) */
	bool gpl_compatible;
	int (*init)(void);
	void (*exit)(void);
	struct module_layout core_layout;
	struct module_layout init_layout;	/* .init* sections; freed when init succeeded */
	/* kallsyms: copies in the module area, st_value already absolute */
	Elf64_Sym *symtab;
	u32 num_symtab;
	u32 num_sections;
	const char *strtab;
	u64 *section_addr;		/* per ELF section index: load address, 0 if not loaded */
	int refcnt;
	struct jump_entry *jump_entries; /* its __jump_table section (<linux/jump_label.h>) */
	u32 num_jump_entries;
};

extern struct list_head modules;
extern u64 modules_generation; /* bumped by every load and unload (the host caches on it) */

int load_module(void *image, u64 len);
int delete_module(const char *name);
struct module *find_module(const char *name);
struct module *module_address(u64 addr);
const char *module_address_lookup(u64 addr, u64 *size, u64 *offset, const char **modname);
bool is_module_text_address(u64 addr);
void print_modules(void);

#endif
