/*
 * gfp.c - GFP flags as text, in the shape Linux prints them for %pGg:
 * named combinations first, the longest (most bits) that fully match,
 * then the remaining single flags, then any leftover bits in hex, joined
 * with '|'.  Used by the allocation-failure and OOM reports.
 */
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <kmemu/log.h>

struct gfp_name {
	gfp_t mask;
	const char *name;
};

/* Order matters: combinations before their parts. */
static const struct gfp_name gfp_names[] = {
	{ GFP_TRANSHUGE, "GFP_TRANSHUGE" },
	{ GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT" },
	{ GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE" },
	{ GFP_HIGHUSER, "GFP_HIGHUSER" },
	{ GFP_USER, "GFP_USER" },
	{ GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT" },
	{ GFP_KERNEL, "GFP_KERNEL" },
	{ GFP_NOFS, "GFP_NOFS" },
	{ GFP_ATOMIC, "GFP_ATOMIC" },
	{ GFP_NOIO, "GFP_NOIO" },
	{ GFP_NOWAIT, "GFP_NOWAIT" },
	{ GFP_DMA, "GFP_DMA" },
	{ __GFP_HIGHMEM, "__GFP_HIGHMEM" },
	{ GFP_DMA32, "GFP_DMA32" },
	/* single flags in bit order (as emu/kernel/gfp.py and recent Linux print them) */
	{ __GFP_MOVABLE, "__GFP_MOVABLE" },
	{ __GFP_RECLAIMABLE, "__GFP_RECLAIMABLE" },
	{ __GFP_HIGH, "__GFP_HIGH" },
	{ __GFP_IO, "__GFP_IO" },
	{ __GFP_FS, "__GFP_FS" },
	{ __GFP_ZERO, "__GFP_ZERO" },
	{ __GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM" },
	{ __GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM" },
	{ __GFP_WRITE, "__GFP_WRITE" },
	{ __GFP_NOWARN, "__GFP_NOWARN" },
	{ __GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL" },
	{ __GFP_NOFAIL, "__GFP_NOFAIL" },
	{ __GFP_NORETRY, "__GFP_NORETRY" },
	{ __GFP_MEMALLOC, "__GFP_MEMALLOC" },
	{ __GFP_COMP, "__GFP_COMP" },
	{ __GFP_NOMEMALLOC, "__GFP_NOMEMALLOC" },
	{ __GFP_HARDWALL, "__GFP_HARDWALL" },
	{ __GFP_THISNODE, "__GFP_THISNODE" },
	{ __GFP_ACCOUNT, "__GFP_ACCOUNT" },
	{ __GFP_ZEROTAGS, "__GFP_ZEROTAGS" },
};

int gfp_format(char *buf, size_t len, gfp_t gfp)
{
	size_t n = 0;
	if (len)
		buf[0] = 0;
	if (!gfp)
		return snprintf(buf, len, "none");
	for (unsigned int i = 0; i < ARRAY_SIZE(gfp_names); i++) {
		gfp_t m = gfp_names[i].mask;
		if ((gfp & m) != m)
			continue;
		gfp &= ~m;
		n += snprintf(buf + n, len > n ? len - n : 0, "%s%s", n ? "|" : "", gfp_names[i].name);
	}
	if (gfp)
		n += snprintf(buf + n, len > n ? len - n : 0, "%s0x%x", n ? "|" : "", gfp);
	return (int)n;
}
