/*
 * module.c - loadable modules, loaded the way Linux's load_module() loads them.
 *
 * The host only hands over bytes: it vmalloc()s a buffer, copies a
 * relocatable x86-64 ELF (ET_REL) into it and calls load_module(buf, len),
 * as Linux's init_module(2) copies the user's buffer.  From there everything
 * happens here, in Linux's order:
 *
 *   1. elf_validity_check: header, section headers, section names, exactly
 *      one symbol table and its string table, every symbol's name and section
 *      index, every RELA section's links; anything out of range is refused
 *      with -ENOEXEC and a printk line saying what.
 *   2. setup_load_info: the name ("name=" in .modinfo, which the build
 *      writes from KBUILD_MODNAME), srcversion and license; a second module
 *      of the same name is refused with -EEXIST.
 *   3. layout: SHF_ALLOC sections in three page-aligned groups (text, then
 *      read-only data, then writable data and bss), then copies of the symbol
 *      table, string table and a per-section address array (kallsyms and the
 *      host's DWARF), then struct module itself (as Linux's lives in the
 *      module's .gnu.linkonce.this_module: THIS_MODULE must be reachable from
 *      -mcmodel=kernel code, i.e. within 2 GiB of it).  One module_alloc()
 *      area in [MODULES_VADDR, MODULES_END) from the vmalloc allocator,
 *      zeroed, mapped RW+NX; .init* sections get a second area the same way,
 *      freed (and dropped from kallsyms) once init succeeded.
 *   4. simplify_symbols: undefined symbols resolve against the kernel's
 *      EXPORT_SYMBOL table only (EXPORT_SYMBOL_GPL ones for GPL-compatible
 *      licenses only); "NAME: Unknown symbol SYM (err -2)" for each miss.
 *      __this_module (THIS_MODULE) is the module's own struct module (Linux
 *      links one into the module from modpost's .mod.c; here it is placed at
 *      the end of the module's area, see step 3).
 *   5. apply_relocations: R_X86_64_64/PC64/PC32/PLT32/32/32S with Linux's
 *      overflow check and message.
 *   6. page permissions: text RX, read-only data RO+NX, the rest RW+NX.
 *   7. the module joins `modules` (COMING), init_module() runs; a negative
 *      return unlinks and frees it and becomes load_module's result, a
 *      positive one is warned about as Linux does.  Then LIVE.
 *
 * Every failure frees what was taken, so the allocators end where they began.
 * load_module always vfree()s the image (Linux's free_copy).  One CPU and
 * host-serialised calls: loads and unloads never race; kallsyms readers (the
 * oops path) see a module only once it is fully laid out.
 */
#include <linux/errno.h>
#include <linux/jump_label.h>
#include <linux/kmemleak.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/module.h>
#include <kmemu/text_patching.h>
#include <kmemu/traps.h>
#include <kmemu/vmap.h>

extern const struct kernel_symbol __start___ksymtab[], __stop___ksymtab[];
extern const struct kernel_symbol __start___ksymtab_gpl[], __stop___ksymtab_gpl[];

struct list_head modules = LIST_HEAD_INIT(modules);
u64 modules_generation;
static char last_unloaded_module[MODULE_NAME_LEN];

/* What load_module knows about the image while it works. */
struct load_info {
	const char *name;		/* from .modinfo, or a placeholder until then */
	Elf64_Ehdr *hdr;
	u64 len;
	Elf64_Shdr *sechdrs;
	const char *secstrings;
	u32 sym_idx, str_idx, modinfo_idx;
	Elf64_Sym *syms;
	u32 num_syms;
	const char *strtab;
	u64 strsize;
	const char *srcversion, *license;
	u64 layout_size, text_size, ro_size, symoff, stroff, secoff, modoff;
	u64 init_size, init_text_size, init_ro_size; /* the .init* sections' own area */
};

/* --- 1. validation ------------------------------------------------------------- */

/* The section's bytes lie inside the image (NOBITS sections have none). */
static bool section_in_image(const struct load_info *info, const Elf64_Shdr *s)
{
	if (s->sh_type == SHT_NOBITS)
		return true;
	return s->sh_offset <= info->len && s->sh_size <= info->len - s->sh_offset;
}

static int check_header(struct load_info *info)
{
	Elf64_Ehdr *h = info->hdr;
	if (info->len < sizeof(*h)) {
		pr_err("Invalid ELF header len %llu\n", info->len);
		return -ENOEXEC;
	}
	if (memcmp(h->e_ident, ELFMAG, SELFMAG)) {
		pr_err("Invalid ELF header magic: != \\177ELF\n");
		return -ENOEXEC;
	}
	if (h->e_type != ET_REL) {
		pr_err("Invalid ELF header type: %u != %u\n", h->e_type, ET_REL);
		return -ENOEXEC;
	}
	if (h->e_machine != EM_X86_64 || h->e_ident[EI_CLASS] != ELFCLASS64 ||
	    h->e_ident[EI_DATA] != ELFDATA2LSB) {
		pr_err("Invalid architecture in ELF header: %u\n", h->e_machine);
		return -ENOEXEC;
	}
	if (h->e_shentsize != sizeof(Elf64_Shdr)) {
		pr_err("Invalid ELF section header size\n");
		return -ENOEXEC;
	}
	if (h->e_shoff >= info->len || (u64)h->e_shnum * sizeof(Elf64_Shdr) > info->len - h->e_shoff ||
	    h->e_shoff % 8) {
		pr_err("Invalid ELF section header overflow\n");
		return -ENOEXEC;
	}
	if (h->e_shstrndx == SHN_UNDEF || h->e_shstrndx >= h->e_shnum) {
		pr_err("Invalid ELF section name index: %d || e_shstrndx (%d) >= e_shnum (%d)\n",
		       h->e_shstrndx, h->e_shstrndx, h->e_shnum);
		return -ENOEXEC;
	}
	return 0;
}

static int check_section_names(struct load_info *info)
{
	Elf64_Shdr *str = &info->sechdrs[info->hdr->e_shstrndx];
	if (str->sh_type == SHT_NOBITS || !section_in_image(info, str) || !str->sh_size) {
		pr_err("Invalid ELF section hdr(type %u)\n", str->sh_type);
		return -ENOEXEC;
	}
	info->secstrings = (const char *)info->hdr + str->sh_offset;
	if (info->secstrings[str->sh_size - 1]) {
		pr_err("ELF Spec violation: section name table isn't null terminated\n");
		return -ENOEXEC;
	}
	Elf64_Shdr *s0 = &info->sechdrs[0];
	if (s0->sh_type != SHT_NULL || s0->sh_size || s0->sh_addr) {
		pr_err("ELF Spec violation: section 0 type(%d)!=SH_NULL or non-zero len or addr\n",
		       s0->sh_type);
		return -ENOEXEC;
	}
	for (u32 i = 1; i < info->hdr->e_shnum; i++) {
		Elf64_Shdr *s = &info->sechdrs[i];
		if (!section_in_image(info, s)) {
			pr_err("Invalid ELF section in module (section %u type %u)\n", i, s->sh_type);
			return -ENOEXEC;
		}
		if (s->sh_name >= str->sh_size) {
			pr_err("Invalid ELF section name in module (section %u type %u)\n", i, s->sh_type);
			return -ENOEXEC;
		}
		u64 a = s->sh_addralign;
		if ((s->sh_flags & SHF_ALLOC) && (a & (a - 1) || a > PAGE_SIZE)) {
			pr_err("Invalid ELF section alignment in module (section %u align %llu)\n", i, a);
			return -ENOEXEC;
		}
	}
	return 0;
}

static int find_symtab(struct load_info *info)
{
	u32 found = 0;
	for (u32 i = 1; i < info->hdr->e_shnum; i++) {
		Elf64_Shdr *s = &info->sechdrs[i];
		if (s->sh_type != SHT_SYMTAB)
			continue;
		if (s->sh_link == SHN_UNDEF || s->sh_link >= info->hdr->e_shnum) {
			pr_err("Invalid ELF sh_link!=SHN_UNDEF(%d) or (sh_link(%d) >= hdr->e_shnum(%d)\n",
			       s->sh_link, s->sh_link, info->hdr->e_shnum);
			return -ENOEXEC;
		}
		found++;
		info->sym_idx = i;
	}
	if (found != 1) {
		pr_warn("%s: module has no symbols (stripped?)\n", info->name);
		return -ENOEXEC;
	}
	Elf64_Shdr *sym = &info->sechdrs[info->sym_idx];
	Elf64_Shdr *str = &info->sechdrs[sym->sh_link];
	if (sym->sh_entsize != sizeof(Elf64_Sym) || sym->sh_size % sizeof(Elf64_Sym) ||
	    sym->sh_offset % 8 || !sym->sh_size) {
		pr_err("Invalid ELF symbol table (section %u size %llu entsize %llu)\n", info->sym_idx,
		       sym->sh_size, sym->sh_entsize);
		return -ENOEXEC;
	}
	if (str->sh_type != SHT_STRTAB || !str->sh_size ||
	    ((const char *)info->hdr)[str->sh_offset + str->sh_size - 1]) {
		pr_err("Invalid ELF string table for the symbol table (section %u)\n", sym->sh_link);
		return -ENOEXEC;
	}
	info->str_idx = sym->sh_link;
	info->syms = (Elf64_Sym *)((u8 *)info->hdr + sym->sh_offset);
	info->num_syms = (u32)(sym->sh_size / sizeof(Elf64_Sym));
	info->strtab = (const char *)info->hdr + str->sh_offset;
	info->strsize = str->sh_size;
	return 0;
}

/* Every symbol names a string inside strtab and a section that exists, inside it. */
static int check_symbols(struct load_info *info)
{
	for (u32 i = 1; i < info->num_syms; i++) {
		Elf64_Sym *s = &info->syms[i];
		if (s->st_name >= info->strsize) {
			pr_err("Invalid ELF symbol %u: name offset %u is outside the string table (%llu bytes)\n",
			       i, s->st_name, info->strsize);
			return -ENOEXEC;
		}
		if (s->st_shndx == SHN_UNDEF || s->st_shndx >= SHN_LORESERVE)
			continue;
		const char *name = info->strtab + s->st_name;
		if (s->st_shndx >= info->hdr->e_shnum) {
			pr_err("Invalid ELF symbol %s: section index %u >= e_shnum (%u)\n", name,
			       s->st_shndx, info->hdr->e_shnum);
			return -ENOEXEC;
		}
		Elf64_Shdr *sec = &info->sechdrs[s->st_shndx];
		if ((sec->sh_flags & SHF_ALLOC) && s->st_value > sec->sh_size) {
			pr_err("Invalid ELF symbol %s: value 0x%llx is outside its section %s (0x%llx bytes)\n",
			       name, s->st_value, info->secstrings + sec->sh_name, sec->sh_size);
			return -ENOEXEC;
		}
	}
	return 0;
}

static int check_relocation_sections(struct load_info *info)
{
	for (u32 i = 1; i < info->hdr->e_shnum; i++) {
		Elf64_Shdr *s = &info->sechdrs[i];
		if (s->sh_type == SHT_REL) {
			pr_err("Invalid ELF section %u: REL relocations are not used on x86-64\n", i);
			return -ENOEXEC;
		}
		if (s->sh_type != SHT_RELA)
			continue;
		if (s->sh_link != info->sym_idx || s->sh_info == 0 || s->sh_info >= info->hdr->e_shnum ||
		    s->sh_entsize != sizeof(Elf64_Rela) || s->sh_size % sizeof(Elf64_Rela) ||
		    s->sh_offset % 8) {
			pr_err("Invalid ELF relocation section %u (%s): link %u info %u entsize %llu\n", i,
			       info->secstrings + s->sh_name, s->sh_link, s->sh_info, s->sh_entsize);
			return -ENOEXEC;
		}
	}
	return 0;
}

static int elf_validity_check(struct load_info *info)
{
	int err = check_header(info);
	if (err)
		return err;
	info->sechdrs = (Elf64_Shdr *)((u8 *)info->hdr + info->hdr->e_shoff);
	if ((err = check_section_names(info)) || (err = find_symtab(info)) ||
	    (err = check_symbols(info)) || (err = check_relocation_sections(info)))
		return err;
	return 0;
}

/* --- 2. .modinfo ------------------------------------------------------------------ */

/* The value of "tag=value" in .modinfo, or NULL (the section is NUL-terminated). */
static const char *get_modinfo(const struct load_info *info, const char *tag)
{
	if (!info->modinfo_idx)
		return NULL;
	const Elf64_Shdr *s = &info->sechdrs[info->modinfo_idx];
	const char *p = (const char *)info->hdr + s->sh_offset, *end = p + s->sh_size;
	u64 tl = strlen(tag);
	for (; p < end; p += strlen(p) + 1)
		if (!strncmp(p, tag, tl) && p[tl] == '=')
			return p + tl + 1;
	return NULL;
}

static bool license_is_gpl_compatible(const char *l)
{
	static const char *const ok[] = { "GPL", "GPL v2", "GPL and additional rights",
					  "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL" };
	for (u32 i = 0; i < ARRAY_SIZE(ok); i++)
		if (!strcmp(l, ok[i]))
			return true;
	return false;
}

static int setup_load_info(struct load_info *info)
{
	for (u32 i = 1; i < info->hdr->e_shnum; i++) {
		Elf64_Shdr *s = &info->sechdrs[i];
		if (strcmp(info->secstrings + s->sh_name, ".modinfo") || s->sh_type == SHT_NOBITS)
			continue;
		if (!s->sh_size || ((const char *)info->hdr)[s->sh_offset + s->sh_size - 1]) {
			pr_err("Invalid ELF .modinfo section: not NUL-terminated\n");
			return -ENOEXEC;
		}
		info->modinfo_idx = i;
	}
	info->name = get_modinfo(info, "name");
	if (!info->name) {
		pr_warn("(missing .modinfo name field): No module found in object\n");
		return -ENOEXEC;
	}
	if (!info->name[0] || strlen(info->name) >= MODULE_NAME_LEN) {
		pr_err("%s: module name must be 1 to %d characters\n", info->name, MODULE_NAME_LEN - 1);
		return -ENOEXEC;
	}
	info->srcversion = get_modinfo(info, "srcversion");
	info->license = get_modinfo(info, "license");
	if (!info->license)
		info->license = "unspecified";
	return 0;
}

/* Taints as Linux's check_modinfo: out-of-tree always, proprietary by license. */
static void module_taint(struct module *mod, const struct load_info *info)
{
	if (!(taint_flags & TAINT_OOT_MODULE))
		pr_warn("%s: loading out-of-tree module taints kernel.\n", mod->name);
	mod->taints |= TAINT_OOT_MODULE;
	if (!mod->gpl_compatible) {
		if (!(taint_flags & TAINT_PROPRIETARY_MODULE))
			pr_warn("%s: module license '%s' taints kernel.\n", mod->name, info->license);
		mod->taints |= TAINT_PROPRIETARY_MODULE;
	}
	taint_flags |= mod->taints;
}

/* --- 3. layout ---------------------------------------------------------------------- */

/* Which group a section goes to: 0 text, 1 read-only, 2 writable, -1 not loaded. */
static int section_group(const Elf64_Shdr *s)
{
	if (!(s->sh_flags & SHF_ALLOC))
		return -1;
	if (s->sh_flags & SHF_EXECINSTR)
		return 0;
	return (s->sh_flags & SHF_WRITE) ? 2 : 1;
}

/* .init* sections go to the init area, freed once init succeeded (Linux's init_layout). */
static bool is_init_section(const struct load_info *info, const Elf64_Shdr *s)
{
	return !strncmp(info->secstrings + s->sh_name, ".init", 5);
}

#define INIT_OFFSET_MASK (1UL << 63) /* in sh_addr until the areas exist: "init area" */
#define LAYOUT_TOO_LARGE (~0UL)

/*
 * Lay out one area's sections (core or init), group by group, each group
 * page-aligned; offsets go to sh_addr (INIT_OFFSET_MASK marks the init area).
 * Returns the end offset, or LAYOUT_TOO_LARGE.
 */
static u64 layout_area(struct load_info *info, bool init, u64 *text_end, u64 *ro_end)
{
	u64 off = 0;
	for (int g = 0; g < 3; g++) {
		for (u32 i = 1; i < info->hdr->e_shnum; i++) {
			Elf64_Shdr *s = &info->sechdrs[i];
			if (section_group(s) != g || is_init_section(info, s) != init)
				continue;
			off = ALIGN(off, s->sh_addralign ? s->sh_addralign : 1);
			s->sh_addr = off | (init ? INIT_OFFSET_MASK : 0);
			off += s->sh_size;
			if (off > MODULES_LEN) {
				pr_err("%s: module is too large (section %s)\n", info->name,
				       info->secstrings + s->sh_name);
				return LAYOUT_TOO_LARGE;
			}
		}
		off = ALIGN(off, PAGE_SIZE);
		if (g == 0)
			*text_end = off;
		else if (g == 1)
			*ro_end = off;
	}
	return off;
}

/*
 * Give every SHF_ALLOC section an offset: .init* ones in the init area, the
 * rest in the core area, followed there by room for the symbol table, string
 * table and section address copies and struct module.
 */
static int layout_sections(struct load_info *info)
{
	u64 off = layout_area(info, false, &info->text_size, &info->ro_size);
	info->init_size = layout_area(info, true, &info->init_text_size, &info->init_ro_size);
	if (off == LAYOUT_TOO_LARGE || info->init_size == LAYOUT_TOO_LARGE)
		return -ENOEXEC;
	info->symoff = off;
	info->stroff = off + (u64)info->num_syms * sizeof(Elf64_Sym);
	info->secoff = ALIGN(info->stroff + info->strsize, 8);
	info->modoff = ALIGN(info->secoff + 8UL * info->hdr->e_shnum, 64);
	info->layout_size = ALIGN(info->modoff + sizeof(struct module), PAGE_SIZE);
	if (info->layout_size > MODULES_LEN || info->layout_size > 0xffffffffUL ||
	    info->init_size > 0xffffffffUL) {
		pr_err("%s: module is too large (%llu bytes)\n", info->name, info->layout_size);
		return -ENOEXEC;
	}
	return 0;
}

static void *module_alloc(u64 size)
{
	return __vmalloc_node_range(size, PAGE_SIZE, MODULES_VADDR, MODULES_END,
				    GFP_KERNEL | __GFP_ZERO, 0, (u64)__builtin_return_address(0));
}

/* Copy the sections in; sh_addr becomes the final address (the image's own for the rest). */
static void move_module(struct module *mod, struct load_info *info)
{
	for (u32 i = 0; i < info->hdr->e_shnum; i++) {
		Elf64_Shdr *s = &info->sechdrs[i];
		if (section_group(s) < 0) {
			s->sh_addr = (u64)info->hdr + s->sh_offset;
			continue;
		}
		if (s->sh_addr & INIT_OFFSET_MASK)
			s->sh_addr = (u64)mod->init_layout.base + (s->sh_addr & ~INIT_OFFSET_MASK);
		else
			s->sh_addr += (u64)mod->core_layout.base;
		if (s->sh_type != SHT_NOBITS)
			memcpy((void *)s->sh_addr, (u8 *)info->hdr + s->sh_offset, s->sh_size);
	}
}

/* --- 4. symbols ------------------------------------------------------------------------ */

static const struct kernel_symbol *find_in(const struct kernel_symbol *start,
					   const struct kernel_symbol *stop, const char *name)
{
	for (const struct kernel_symbol *k = start; k < stop; k++)
		if (!strcmp(k->name, name))
			return k;
	return NULL;
}

/* An exported kernel symbol; GPL-only exports need a GPL-compatible module. */
static const struct kernel_symbol *find_exported_symbol(const char *name, bool gplok)
{
	const struct kernel_symbol *k = find_in(__start___ksymtab, __stop___ksymtab, name);
	if (!k && gplok)
		k = find_in(__start___ksymtab_gpl, __stop___ksymtab_gpl, name);
	return k;
}

static int simplify_symbols(struct module *mod, struct load_info *info)
{
	int ret = 0;
	for (u32 i = 1; i < info->num_syms; i++) {
		Elf64_Sym *s = &info->syms[i];
		const char *name = info->strtab + s->st_name;
		switch (s->st_shndx) {
		case SHN_COMMON:
			pr_warn("%s: please compile with -fno-common\n", mod->name);
			ret = -ENOEXEC;
			break;
		case SHN_ABS:
			break;
		case SHN_UNDEF: {
			if (!strcmp(name, "__this_module")) { /* THIS_MODULE: its own struct module */
				s->st_value = (u64)mod;
				break;
			}
			const struct kernel_symbol *k = find_exported_symbol(name, mod->gpl_compatible);
			if (k) {
				s->st_value = k->value;
				break;
			}
			if (ELF64_ST_BIND(s->st_info) == STB_WEAK)
				break;
			ret = -ENOENT;
			pr_warn("%s: Unknown symbol %s (err %d)\n", mod->name, name, ret);
			break;
		}
		default:
			if (s->st_shndx >= SHN_LORESERVE) {
				pr_warn("%s: symbol %s has unsupported section index 0x%x\n", mod->name, name,
					s->st_shndx);
				ret = -ENOEXEC;
				break;
			}
			s->st_value += info->sechdrs[s->st_shndx].sh_addr;
		}
	}
	return ret;
}

/* --- 5. relocations ------------------------------------------------------------------- */

static int reloc_width(u32 type)
{
	switch (type) {
	case R_X86_64_NONE:
		return 0;
	case R_X86_64_64:
	case R_X86_64_PC64:
		return 8;
	case R_X86_64_32:
	case R_X86_64_32S:
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
		return 4;
	}
	return -1;
}

/* Write one relocation at loc (width bytes, already range-checked). */
static int write_reloc(struct module *mod, u32 type, u8 *loc, u64 val)
{
	static const u8 zero[8];
	int size = reloc_width(type);
	if (memcmp(loc, zero, size)) {
		pr_err("x86/modules: Invalid relocation target, existing value is nonzero for type %u, loc %px, val %llx\n",
		       type, loc, val);
		return -ENOEXEC;
	}
	switch (type) {
	case R_X86_64_64:
		*(u64 *)loc = val;
		return 0;
	case R_X86_64_32:
		*(u32 *)loc = (u32)val;
		if (val != *(u32 *)loc)
			goto overflow;
		return 0;
	case R_X86_64_32S:
		*(s32 *)loc = (s32)val;
		if ((s64)val != *(s32 *)loc)
			goto overflow;
		return 0;
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
		val -= (u64)loc;
		*(u32 *)loc = (u32)val;
		if ((s64)val != *(s32 *)loc)
			goto overflow;
		return 0;
	case R_X86_64_PC64:
		*(u64 *)loc = val - (u64)loc;
		return 0;
	}
	return 0;
overflow:
	pr_err("overflow in relocation type %u val %llx\n", type, val);
	pr_err("`%s' likely not compiled with -mcmodel=kernel\n", mod->name);
	return -ENOEXEC;
}

static int apply_relocate_add(struct module *mod, struct load_info *info, u32 relsec)
{
	Elf64_Shdr *rs = &info->sechdrs[relsec], *target = &info->sechdrs[rs->sh_info];
	Elf64_Rela *rel = (Elf64_Rela *)((u8 *)info->hdr + rs->sh_offset);
	for (u64 i = 0; i < rs->sh_size / sizeof(*rel); i++) {
		u32 type = ELF64_R_TYPE(rel[i].r_info), symi = ELF64_R_SYM(rel[i].r_info);
		int w = reloc_width(type);
		if (w < 0) {
			pr_err("%s: Unknown rela relocation: %u\n", mod->name, type);
			return -ENOEXEC;
		}
		if (!w)
			continue;
		if (symi >= info->num_syms || rel[i].r_offset > target->sh_size ||
		    target->sh_size - rel[i].r_offset < (u64)w) {
			pr_err("%s: relocation %llu of section %s is out of range (offset 0x%llx, symbol %u)\n",
			       mod->name, i, info->secstrings + target->sh_name, rel[i].r_offset, symi);
			return -ENOEXEC;
		}
		u64 val = info->syms[symi].st_value + rel[i].r_addend;
		int err = write_reloc(mod, type, (u8 *)target->sh_addr + rel[i].r_offset, val);
		if (err)
			return err;
	}
	return 0;
}

static int apply_relocations(struct module *mod, struct load_info *info)
{
	for (u32 i = 1; i < info->hdr->e_shnum; i++) {
		Elf64_Shdr *s = &info->sechdrs[i];
		if (s->sh_type != SHT_RELA || section_group(&info->sechdrs[s->sh_info]) < 0)
			continue; /* relocations of debug sections are the host's business */
		if (info->sechdrs[s->sh_info].sh_type == SHT_NOBITS) {
			pr_err("%s: relocation section %s targets a NOBITS section\n", mod->name,
			       info->secstrings + s->sh_name);
			return -ENOEXEC;
		}
		int err = apply_relocate_add(mod, info, i);
		if (err)
			return err;
	}
	return 0;
}

/* --- 6. finishing touches --------------------------------------------------------------- */

/* A defined global function of the module by name, or 0. */
static u64 module_function(const struct load_info *info, const char *name)
{
	for (u32 i = 1; i < info->num_syms; i++) {
		const Elf64_Sym *s = &info->syms[i];
		if (s->st_shndx != SHN_UNDEF && s->st_shndx < SHN_LORESERVE &&
		    ELF64_ST_BIND(s->st_info) != STB_LOCAL && !strcmp(info->strtab + s->st_name, name) &&
		    section_group(&info->sechdrs[s->st_shndx]) == 0)
			return s->st_value;
	}
	return 0;
}

/* kallsyms copies and section addresses, in the module's own area. */
static void copy_symbols(struct module *mod, struct load_info *info)
{
	u8 *base = mod->core_layout.base;
	mod->symtab = (Elf64_Sym *)(base + info->symoff);
	memcpy(mod->symtab, info->syms, (u64)info->num_syms * sizeof(Elf64_Sym));
	mod->num_symtab = info->num_syms;
	mod->strtab = (const char *)(base + info->stroff);
	memcpy((void *)mod->strtab, info->strtab, info->strsize);
	mod->section_addr = (u64 *)(base + info->secoff);
	mod->num_sections = info->hdr->e_shnum;
	for (u32 i = 0; i < info->hdr->e_shnum; i++)
		mod->section_addr[i] = section_group(&info->sechdrs[i]) < 0 ? 0 : info->sechdrs[i].sh_addr;
}

/* The module's static-key sites (__jump_table, placed in its writable data). */
static void find_jump_table(struct module *mod, const struct load_info *info)
{
	for (u32 i = 1; i < info->hdr->e_shnum; i++) {
		const Elf64_Shdr *s = &info->sechdrs[i];
		if (s->sh_addr && !strcmp(info->secstrings + s->sh_name, "__jump_table")) {
			mod->jump_entries = (struct jump_entry *)s->sh_addr;
			mod->num_jump_entries = (u32)(s->sh_size / sizeof(struct jump_entry));
		}
	}
}

/* Text RX, read-only data RO+NX; writable data stays RW+NX as vmalloc mapped it. */
static void layout_protect(const struct module_layout *l)
{
	u64 base = (u64)l->base;
	set_memory_prot(base, l->text_size >> PAGE_SHIFT, 0, _PAGE_RW | _PAGE_NX);
	set_memory_prot(base + l->text_size, (l->ro_size - l->text_size) >> PAGE_SHIFT, 0, _PAGE_RW);
}

static void module_enable_protections(struct module *mod)
{
	layout_protect(&mod->core_layout);
	if (mod->init_layout.base)
		layout_protect(&mod->init_layout);
}

/* After a successful init: the init area goes, and its sections leave kallsyms. */
static void free_init_layout(struct module *mod)
{
	u64 b = (u64)mod->init_layout.base, e = b + mod->init_layout.size;
	if (!b)
		return;
	for (u32 i = 0; i < mod->num_sections; i++)
		if (mod->section_addr[i] >= b && mod->section_addr[i] < e)
			mod->section_addr[i] = 0;
	jump_label_module_drop_init(mod, b, e);
	memset(&mod->init_layout, 0, sizeof(mod->init_layout));
	modules_generation++;
	vfree((void *)b);
}

/* Everything a module holds is its two areas (struct module is in the core one). */
static void free_module(struct module *mod)
{
	vfree(mod->init_layout.base);
	vfree(mod->core_layout.base);
}

struct module *find_module(const char *name)
{
	struct module *mod;
	list_for_each_entry(mod, &modules, list)
		if (!strcmp(mod->name, name))
			return mod;
	return NULL;
}

/* --- 7. init --------------------------------------------------------------------------- */

static int do_init_module(struct module *mod)
{
	int ret = mod->init ? mod->init() : 0;
	if (ret < 0) {
		mod->state = MODULE_STATE_GOING;
		list_del(&mod->list);
		modules_generation++;
		free_module(mod);
		return ret;
	}
	if (ret > 0) {
		pr_warn("do_init_module: '%s'->init suspiciously returned %d, it should follow 0/-E convention\n"
			"do_init_module: loading module anyway...\n", mod->name, ret);
		show_stack_trace((u64)__builtin_frame_address(0), 0);
	}
	free_init_layout(mod);
	mod->state = MODULE_STATE_LIVE;
	return 0;
}

/*
 * Steps 3-6 for a validated image, starting from the early struct module `tmp`
 * (name, license, taints).  Returns the module's struct module, now inside its
 * own area, or NULL with *err set and everything taken given back.
 */
/* Constructors (.init_array; Linux's do_mod_ctors): GCC's KASAN registers the
 * module's globals from them, so their red zones are poisoned before init. */
static void do_mod_ctors(struct load_info *info)
{
	for (u32 i = 1; i < info->hdr->e_shnum; i++) {
		Elf64_Shdr *s = &info->sechdrs[i];
		if (s->sh_type != SHT_INIT_ARRAY || !(s->sh_flags & SHF_ALLOC))
			continue;
		void (**f)(void) = (void (**)(void))s->sh_addr;
		for (u64 k = 0; k < s->sh_size / sizeof(*f); k++)
			f[k]();
	}
}

/*
 * kmemleak (Linux's kmemleak_load_module and move_module): the core area lives
 * as long as the module, referenced from struct module, so it is never a leak;
 * of it only struct module and the writable sections are scanned (the module's
 * .data/.bss are roots).  The init area is freed after init: never scanned.
 */
static void kmemleak_load_module(const struct module *mod, const struct load_info *info)
{
	u64 b = (u64)mod->core_layout.base, e = b + mod->core_layout.size;
	kmemleak_not_leak(mod->core_layout.base);
	kmemleak_ignore(mod->init_layout.base);
	kmemleak_scan_area(mod, sizeof(*mod), GFP_KERNEL);
	for (u32 i = 1; i < info->hdr->e_shnum; i++) {
		const Elf64_Shdr *s = &info->sechdrs[i];
		if ((s->sh_flags & (SHF_ALLOC | SHF_WRITE)) == (SHF_ALLOC | SHF_WRITE) &&
		    s->sh_size && s->sh_addr >= b && s->sh_addr + s->sh_size <= e)
			kmemleak_scan_area((void *)s->sh_addr, s->sh_size, GFP_KERNEL);
	}
}

static struct module *layout_and_link(struct module *tmp, struct load_info *info, int *err)
{
	*err = layout_sections(info);
	if (*err)
		return NULL;
	u8 *base = module_alloc(info->layout_size);
	u8 *init = info->init_size ? module_alloc(info->init_size) : NULL;
	if (!base || (info->init_size && !init)) {
		vfree(init);
		vfree(base);
		*err = -ENOMEM;
		return NULL;
	}
	struct module *mod = (struct module *)(base + info->modoff);
	*mod = *tmp;
	mod->core_layout = (struct module_layout){ base, (u32)info->layout_size,
						   (u32)info->text_size, (u32)info->ro_size, 0 };
	mod->init_layout = (struct module_layout){ init, (u32)info->init_size,
						   (u32)info->init_text_size,
						   (u32)info->init_ro_size, 0 };
	move_module(mod, info);
	if ((*err = simplify_symbols(mod, info)) || (*err = apply_relocations(mod, info))) {
		free_module(mod);
		return NULL;
	}
	mod->init = (int (*)(void))module_function(info, "init_module");
	mod->exit = (void (*)(void))module_function(info, "cleanup_module");
	copy_symbols(mod, info);
	find_jump_table(mod, info);
	jump_label_module_init(mod); /* its sites to the kernel's current key states */
	module_enable_protections(mod);
	kmemleak_load_module(mod, info);
	do_mod_ctors(info);
	return mod;
}

static int load_module_image(struct load_info *info)
{
	int err = elf_validity_check(info);
	if (err || (err = setup_load_info(info)))
		return err;
	if (find_module(info->name)) {
		pr_warn("%s: module is already loaded\n", info->name);
		return -EEXIST;
	}
	struct module tmp;
	memset(&tmp, 0, sizeof(tmp));
	tmp.state = MODULE_STATE_UNFORMED;
	strscpy(tmp.name, info->name, sizeof(tmp.name));
	strscpy(tmp.srcversion, info->srcversion ? info->srcversion : "", sizeof(tmp.srcversion));
	tmp.gpl_compatible = license_is_gpl_compatible(info->license);
	module_taint(&tmp, info); /* before linking, as Linux's check_modinfo: taints stay */
	struct module *mod = layout_and_link(&tmp, info, &err);
	if (!mod)
		return err;
	mod->state = MODULE_STATE_COMING;
	list_add(&mod->list, &modules); /* newest first, as /proc/modules lists them */
	modules_generation++;
	return do_init_module(mod);
}

/*
 * Load the module in image[0, len) (a vmalloc()ed copy the caller hands
 * over; freed here in every case).  0 or a negative errno.
 */
int load_module(void *image, u64 len)
{
	struct load_info info = { .name = "(unnamed module)", .hdr = image, .len = len };
	int err = image ? load_module_image(&info) : -EINVAL;
	vfree(image);
	return err;
}

/*
 * Unload: cleanup_module(), then free everything.  -ENOENT for an unknown
 * name; -EBUSY for a module that is not live, has users, or has an init
 * but no exit (Linux refuses those without a forced unload).
 */
int delete_module(const char *name)
{
	struct module *mod = find_module(name);
	if (!mod)
		return -ENOENT;
	if (mod->state != MODULE_STATE_LIVE || mod->refcnt || (mod->init && !mod->exit))
		return -EBUSY;
	mod->state = MODULE_STATE_GOING;
	if (mod->exit)
		mod->exit();
	list_del(&mod->list);
	modules_generation++;
	strscpy(last_unloaded_module, mod->name, sizeof(last_unloaded_module));
	free_module(mod);
	return 0;
}

/* --- kallsyms and oops support ------------------------------------------------------------ */

/* Whether addr is in l, and in its text. */
static bool in_layout(const struct module_layout *l, u64 addr)
{
	return l->base && addr >= (u64)l->base && addr < (u64)l->base + l->size;
}

/* The module whose core or init area holds addr (the oops path calls this: no locks). */
struct module *module_address(u64 addr)
{
	struct module *mod;
	list_for_each_entry(mod, &modules, list) {
		if (mod->state != MODULE_STATE_UNFORMED &&
		    (in_layout(&mod->core_layout, addr) || in_layout(&mod->init_layout, addr)))
			return mod;
	}
	return NULL;
}

bool is_module_text_address(u64 addr)
{
	struct module *mod = module_address(addr);
	if (!mod)
		return false;
	const struct module_layout *l = in_layout(&mod->core_layout, addr) ? &mod->core_layout
									   : &mod->init_layout;
	return addr < (u64)l->base + l->text_size;
}

/*
 * The nearest named symbol at or below addr in its module, with Linux's
 * size: the distance to the next symbol (or to the end of the region).
 */
const char *module_address_lookup(u64 addr, u64 *size, u64 *offset, const char **modname)
{
	struct module *mod = module_address(addr);
	if (!mod)
		return NULL;
	const struct module_layout *l = in_layout(&mod->core_layout, addr) ? &mod->core_layout
									   : &mod->init_layout;
	u64 base = (u64)l->base;
	u64 next = base + (addr < base + l->text_size ? l->text_size : l->size);
	u64 best = 0;
	u32 besti = 0;
	for (u32 i = 1; i < mod->num_symtab; i++) {
		const Elf64_Sym *s = &mod->symtab[i];
		u32 t = ELF64_ST_TYPE(s->st_info);
		if (s->st_shndx == SHN_UNDEF || s->st_shndx >= SHN_LORESERVE || !mod->strtab[s->st_name] ||
		    t == STT_SECTION || t == STT_FILE || !mod->section_addr[s->st_shndx])
			continue;
		if (s->st_value <= addr && s->st_value > best) {
			best = s->st_value;
			besti = i;
		}
		if (s->st_value > addr && s->st_value < next)
			next = s->st_value;
	}
	if (!besti || best < base)
		return NULL;
	if (size)
		*size = next - best;
	if (offset)
		*offset = addr - best;
	if (modname)
		*modname = mod->name;
	return mod->strtab + mod->symtab[besti].st_name;
}

/* "(PO+)": a module's taints and, while loading or unloading, its state. */
static void module_flags(const struct module *mod, char *buf)
{
	int n = 0;
	if (mod->taints & TAINT_PROPRIETARY_MODULE)
		buf[n++] = 'P';
	if (mod->taints & TAINT_OOT_MODULE)
		buf[n++] = 'O';
	if (mod->state == MODULE_STATE_COMING)
		buf[n++] = '+';
	if (mod->state == MODULE_STATE_GOING)
		buf[n++] = '-';
	buf[n] = 0;
}

/* The oops/WARN line: "Modules linked in: b(O) a(O) [last unloaded: c]". */
void print_modules(void)
{
	char line[256], flags[8];
	int n = snprintf(line, sizeof(line), "Modules linked in:");
	struct module *mod;
	list_for_each_entry(mod, &modules, list) {
		if (mod->state == MODULE_STATE_UNFORMED)
			continue;
		module_flags(mod, flags);
		if (n < (int)sizeof(line))
			n += snprintf(line + n, sizeof(line) - n, flags[0] ? " %s(%s)" : " %s%s", mod->name,
				      flags);
	}
	if (last_unloaded_module[0] && n < (int)sizeof(line))
		snprintf(line + n, sizeof(line) - n, " [last unloaded: %s]", last_unloaded_module);
	printk("%s\n", line);
}

/* --- modules linked into the image ------------------------------------------------------ */

extern char __modules_builtin_start[], __modules_builtin_end[];

/*
 * Without a host (QEMU) the build can link module images into the kernel
 * (kmemu qemu --module): each is loaded here through the same load_module(),
 * from a vmalloc()ed copy as the host would hand it over.
 */
void load_builtin_modules(void)
{
	for (char *p = __modules_builtin_start; p + 8 <= __modules_builtin_end;) {
		u64 len = *(u64 *)p;
		p += 8;
		if (len > (u64)(__modules_builtin_end - p))
			break;
		void *copy = vmalloc(len);
		int err = copy ? (memcpy(copy, p, len), load_module(copy, len)) : -ENOMEM;
		if (err)
			pr_err("kmemu: built-in module at offset %llu failed to load: %d\n",
			       (u64)(p - 8 - __modules_builtin_start), err);
		p += ALIGN(len, 8);
	}
}
