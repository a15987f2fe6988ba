/*
 * vmscan.c - reclaim, kswapd, the OOM report, and the page allocator's
 * diagnostics (might_sleep, bad_page, warn_alloc, show_free_areas).
 *
 * kmemu has no page cache and no processes, so reclaim means shrinkers:
 * registered callbacks that count and free objects (slab caches register
 * one; tests register their own).  Direct reclaim calls them in the
 * allocating context; kswapd is *deferred work*: wakeup_kswapd() marks the
 * zone, and kswapd_run() reclaims until the zone is back above its high
 * watermark when the CPU next returns to process context (the end of every
 * host call, and the idle loop) - not a real kernel thread.
 *
 * Sleeping: mm_wait_for_memory() halts with interrupts enabled after
 * telling the host whether a timeout may end the wait (throttling between
 * reclaim rounds) or only an interrupt can (__GFP_NOFAIL with nothing
 * left to try).  Under QEMU there is no timer, so a timed wait returns at
 * once and an endless one panics.
 *
 * shrinker_list is changed only from process context with interrupts off.
 */
#include <linux/export.h>
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/io.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/page_alloc.h>
#include <kmemu/traps.h>

static struct list_head shrinker_list = LIST_HEAD_INIT(shrinker_list);
u64 kswapd_runs, kswapd_reclaimed, direct_reclaims, oom_count, alloc_stalls;
static u32 kswapd_pending;
static const char *const flag_names[NR_PAGEFLAGS] = { "reserved", "buddy", "pcp", "head", "tail", "slab", "zeroed" };

void register_shrinker(struct shrinker *s)
{
	unsigned long flags;
	local_irq_save(flags);
	list_add_tail(&s->list, &shrinker_list);
	local_irq_restore(flags);
}

void unregister_shrinker(struct shrinker *s)
{
	unsigned long flags;
	local_irq_save(flags);
	list_del(&s->list);
	local_irq_restore(flags);
}

bool reclaimable_objects(void)
{
	struct shrinker *s;
	list_for_each_entry(s, &shrinker_list, list) {
		struct shrink_control sc = { .gfp_mask = GFP_KERNEL };
		u64 n = s->count_objects(s, &sc);
		if (n && n != SHRINK_EMPTY)
			return true;
	}
	return false;
}

/* Ask every shrinker for objects until nr_wanted were freed; returns the number freed. */
u64 shrink_slab(gfp_t gfp, u64 nr_wanted)
{
	struct shrinker *s;
	u64 freed = 0;

	list_for_each_entry(s, &shrinker_list, list) {
		struct shrink_control sc = { .gfp_mask = gfp };
		u64 batch = s->batch > 0 ? (u64)s->batch : 128;
		u64 count = s->count_objects(s, &sc);
		if (!count || count == SHRINK_EMPTY)
			continue;
		while (count && freed < nr_wanted) {
			sc.nr_to_scan = min(count, batch);
			sc.nr_scanned = sc.nr_to_scan;
			u64 ret = s->scan_objects(s, &sc);
			s->nr_scanned_total += sc.nr_scanned;
			if (ret == SHRINK_STOP || !ret)
				break;
			s->nr_freed_total += ret;
			freed += ret;
			count -= min(count, sc.nr_scanned);
		}
		if (freed >= nr_wanted)
			break;
	}
	return freed;
}

/* Direct reclaim: shrink, then empty the pcp lists so the freed pages count. */
u64 try_to_free_pages(gfp_t gfp, unsigned int order)
{
	direct_reclaims++;
	u64 freed = shrink_slab(gfp, max(32UL, 1UL << order));
	drain_all_pages();
	return freed;
}

void wakeup_kswapd(struct zone *z)
{
	if (!reclaimable_objects() && !z->pcp.count)
		return;
	z->kswapd_wake = 1;
	kswapd_pending = 1;
}

/* Background reclaim: bring every woken zone back above its high watermark. */
void kswapd_run(void)
{
	kswapd_pending = 0;
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *z = &zones[i];
		if (!z->kswapd_wake)
			continue;
		z->kswapd_wake = 0;
		kswapd_runs++;
		drain_all_pages();
		while (z->nr_free_pages < high_wmark_pages(z)) {
			u64 got = shrink_slab(GFP_KERNEL, high_wmark_pages(z) - z->nr_free_pages);
			drain_all_pages();
			kswapd_reclaimed += got;
			if (!got)
				break;
		}
	}
}

/* Called at the end of every host call and from the idle loop (process context). */
bool vfree_pending(void);
void vfree_deferred_work(void);

void kmemu_deferred_work(void)
{
	if (in_interrupt() || irqs_disabled())
		return;
	if (READ_ONCE(kswapd_pending))
		kswapd_run();
	if (vfree_pending())
		vfree_deferred_work();
}

void mm_wait_for_memory(bool forever)
{
	if (in_atomic() || irqs_disabled())
		return; /* reported by might_sleep already; sleeping here would never end */
	if (!host_present) {
		if (forever)
			panic("out of memory: a __GFP_NOFAIL allocation cannot make progress");
		return;
	}
	host_ctl(forever ? KMEMU_CTL_SLEEP_FOREVER : KMEMU_CTL_SLEEP);
	__asm__ __volatile__("sti; hlt" ::: "memory");
}

void __might_sleep(const char *file, int line)
{
	static struct kmemu_event ev;
	/* like Linux: no reports while the kernel is still booting (interrupts are off) */
	if ((!in_atomic() && !irqs_disabled()) || system_state != SYSTEM_RUNNING)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_SLEEP_ATOMIC;
	ev.args[0] = in_atomic();
	ev.args[1] = irqs_disabled();
	ev.args[2] = preempt_count;
	snprintf(ev.msg, sizeof(ev.msg), "BUG: sleeping function called from invalid context at %s:%d",
		 file, line);
	printk("%s\n", ev.msg);
	printk("in_atomic(): %d, irqs_disabled(): %d, non_block: 0, pid: 0, name: kmemu\n",
	       in_atomic(), irqs_disabled());
	printk("preempt_count: %x, expected: 0\n", preempt_count);
	printk("RCU nest depth: 0, expected: 0\n");
	printk("CPU: 0 PID: 0 Comm: kmemu %s 0.1.0 #1\n", print_tainted());
	show_stack_trace((u64)__builtin_frame_address(0), 0);
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	taint_flags |= TAINT_WARN; /* as __might_resched's add_taint: 'W' from the next report on */
	host_event(&ev);
}
EXPORT_SYMBOL(__might_sleep);

static void format_page_flags(char *buf, size_t len, u64 flags)
{
	size_t n = 0;
	buf[0] = 0;
	for (int b = 0; b < NR_PAGEFLAGS; b++)
		if (flags & (1UL << b))
			n += snprintf(buf + n, len > n ? len - n : 0, "%s%s", n ? "|" : "", flag_names[b]);
	snprintf(buf + n, len > n ? len - n : 0, "%szone=%llu", n ? "|" : "", flags >> ZONES_PGSHIFT);
}

void dump_page(struct page *page, const char *reason)
{
	char fl[96];
	format_page_flags(fl, sizeof(fl), page->flags);
	printk("page: refcount:%d mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x%lx\n",
	       page->_refcount, page_to_pfn(page));
	printk("flags: 0x%llx(%s)\n", page->flags, fl);
	printk("raw: %016llx %016llx %016llx %016llx\n", page->flags, (u64)page->lru.next,
	       (u64)page->lru.prev, page->private);
	printk("page dumped because: %s\n", reason);
}

void bad_page(struct page *page, const char *reason)
{
	static struct kmemu_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_BAD_PAGE;
	ev.args[0] = page_to_pfn(page);
	ev.args[1] = (u64)page;
	ev.args[2] = page->flags;
	snprintf(ev.msg, sizeof(ev.msg), "BUG: Bad page state in process kmemu  pfn:%05lx",
		 page_to_pfn(page));
	printk("%s\n", ev.msg);
	dump_page(page, reason);
	printk("CPU: 0 PID: 0 Comm: kmemu %s 0.1.0 #1\n", print_tainted());
	show_stack_trace((u64)__builtin_frame_address(0), 0);
	printk("Disabling lock debugging due to kernel taint\n");
	taint_flags |= TAINT_BAD_PAGE;
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	/* the reason goes in args[3..] as text for the host */
	memcpy(&ev.args[3], reason, min(strlen(reason), sizeof(u64) * 5 - 1));
	host_event(&ev);
}

static void show_zone_buddy(struct zone *z)
{
	char line[256];
	u64 total = 0;
	int n = snprintf(line, sizeof(line), "Node 0 %s: ", z->name);
	for (int o = 0; o < NR_PAGE_ORDERS; o++) {
		u64 nr = z->free_area[o].nr_free;
		total += nr << o;
		n += snprintf(line + n, sizeof(line) - n, "%llu*%lukB %s", nr, 4UL << o, nr ? "(U) " : "");
	}
	snprintf(line + n, sizeof(line) - n, "= %llukB", total * 4);
	printk("%s\n", line);
}

void show_free_areas(void)
{
	u64 free = 0, pcp = 0;
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		free += zones[i].nr_free_pages;
		pcp += (u64)zones[i].pcp.count;
	}
	printk("Mem-Info:\n");
	printk("active_anon:0 inactive_anon:0 isolated_anon:0\n active_file:0 inactive_file:0 "
	       "isolated_file:0\n unevictable:0 dirty:0 writeback:0\n slab_reclaimable:0 "
	       "slab_unreclaimable:0\n mapped:0 shmem:0 pagetables:0\n sec_pagetables:0 bounce:0\n"
	       " kernel_misc_reclaimable:0\n free:%llu free_pcp:%llu free_cma:0\n", free, pcp);
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *z = &zones[i];
		if (!populated_zone(z))
			continue;
		printk("Node 0 %s free:%llukB boost:%llukB min:%llukB low:%llukB high:%llukB "
		       "reserved_highatomic:0KB present:%llukB managed:%llukB free_pcp:%llukB "
		       "local_pcp:%llukB free_cma:0kB\n",
		       z->name, z->nr_free_pages * 4, z->watermark_boost * 4, min_wmark_pages(z) * 4,
		       low_wmark_pages(z) * 4, high_wmark_pages(z) * 4, z->present_pages * 4,
		       z->managed_pages * 4, (u64)z->pcp.count * 4, (u64)z->pcp.count * 4);
		printk("lowmem_reserve[]: %lld %lld %lld\n", z->lowmem_reserve[0], z->lowmem_reserve[1],
		       z->lowmem_reserve[2]);
	}
	for (int i = 0; i < MAX_NR_ZONES; i++)
		if (populated_zone(&zones[i]))
			show_zone_buddy(&zones[i]);
	printk("%lu total pagecache pages\n0 pages in swap cache\nFree swap  = 0kB\nTotal swap = 0kB\n", 0UL);
	u64 present = 0, managed = 0;
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		present += zones[i].present_pages;
		managed += zones[i].managed_pages;
	}
	printk("%llu pages RAM\n0 pages HighMem/MovableOnly\n%llu pages reserved\n", present,
	       present - managed);
}

void warn_alloc(gfp_t gfp, unsigned int order, const char *what)
{
	static struct kmemu_event ev;
	char mode[128];

	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_ALLOC_FAIL;
	ev.args[0] = order;
	ev.args[1] = gfp;
	gfp_format(mode, sizeof(mode), gfp);
	snprintf(ev.msg, sizeof(ev.msg), "kmemu: %s: order:%u, mode:0x%x(%s), nodemask=(null)", what,
		 order, gfp, mode);
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	if (!(gfp & __GFP_NOWARN)) {
		printk("%s\n", ev.msg);
		printk("CPU: 0 PID: 0 Comm: kmemu %s 0.1.0 #1\n", print_tainted());
		show_stack_trace((u64)__builtin_frame_address(0), 0);
		show_free_areas();
	}
	host_event(&ev);
}

/*
 * The OOM report in Linux's shape.  There is no process to kill, so the
 * caller fails the allocation (Linux would kill a task, or panic with
 * "System is deadlocked on memory" when there is none).
 */
bool out_of_memory(gfp_t gfp, unsigned int order)
{
	static struct kmemu_event ev;
	char mode[128];

	oom_count++;
	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_OOM;
	ev.args[0] = order;
	ev.args[1] = gfp;
	gfp_format(mode, sizeof(mode), gfp);
	snprintf(ev.msg, sizeof(ev.msg), "kmemu invoked oom-killer: gfp_mask=0x%x(%s), order=%u, "
		 "oom_score_adj=0", gfp, mode, order);
	printk("%s\n", ev.msg);
	printk("CPU: 0 PID: 0 Comm: kmemu %s 0.1.0 #1\n", print_tainted());
	show_stack_trace((u64)__builtin_frame_address(0), 0);
	show_free_areas();
	printk("Tasks state (memory values in pages):\n");
	printk("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes "
	       "swapents oom_score_adj name\n");
	printk("Out of memory and no killable processes...\n");
	printk("kmemu: no process to kill: the allocation fails\n");
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	host_event(&ev);
	return false;
}
