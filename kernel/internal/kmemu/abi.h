/*
 * abi.h - the guest/host interface (ABI version 1).
 *
 * Ports (all 32-bit accesses except the console):
 *   0x00e9  out8   console byte (QEMU debugcon convention)
 *   0x00f4  out32  exit code (QEMU isa-debug-exit convention)
 *   0xc9e0  in32   host magic: reads 'KMEM' under kmemu, all ones elsewhere
 *   0xc9e4  out32  event: low 32 bits of the physical address of a
 *                  struct kmemu_event; the host reads it before the out returns
 *   0xc9e8  out32  control: one of KMEMU_CTL_*; READY, CALL_DONE and
 *                  CALL_OOPS are always followed by hlt so the host stops there
 *   0xc9ec  out32  console: the last N bytes of log_buf (N = the value, the
 *                  ring ends at log_next) were just logged; the host reads
 *                  them from the ring: one exit per line, not one per byte
 *   0xc9f0  in32   trace clock: the clock trace_ring.clock names, now; returns
 *                  its low 32 bits and latches the high ones for 0xc9f4
 *   0xc9f4  in32   trace clock: the high 32 bits latched by the last 0xc9f0
 *
 * Under QEMU the magic read returns 0xffffffff, host_present is false and
 * nothing is written to the kmemu ports (the console goes to 0xe9 byte by byte).
 */
#ifndef KMEMU_KMEMU_H
#define KMEMU_KMEMU_H
#include <linux/types.h>

#define KMEMU_PORT_CONSOLE 0xe9
#define KMEMU_PORT_EXIT 0xf4
#define KMEMU_PORT_MAGIC 0xc9e0
#define KMEMU_PORT_EVENT 0xc9e4
#define KMEMU_PORT_CTL 0xc9e8
#define KMEMU_PORT_CONSOLE_LOG 0xc9ec
#define KMEMU_PORT_TRACE_CLOCK 0xc9f0
#define KMEMU_PORT_TRACE_CLOCK_HI 0xc9f4
#define KMEMU_MAGIC 0x4d454d4b /* "KMEM" */
#define KMEMU_ABI_VERSION 1

#define KMEMU_CTL_READY 1     /* idle: the host may call or interrupt */
#define KMEMU_CTL_CALL_DONE 2 /* a host call returned; result in %rax */
#define KMEMU_CTL_CALL_OOPS 3 /* a host call died in an oops */
#define KMEMU_CTL_IRQ_WINDOW 4 /* interrupts were just enabled */
#define KMEMU_CTL_SLEEP 5      /* about to hlt waiting for memory; a timeout may wake it */
#define KMEMU_CTL_SLEEP_FOREVER 6 /* about to hlt; only an interrupt can wake it */
#define KMEMU_CTL_TEXT_POKE 7  /* text_poke() changed code: snapshots from before hold other code */

/* Event types: keep emu/kernel/events.py in step. */
#define KMEMU_EV_OOPS 1
#define KMEMU_EV_BUG 2
#define KMEMU_EV_WARN 3
#define KMEMU_EV_PANIC 4
#define KMEMU_EV_IRQ_UNHANDLED 5
#define KMEMU_EV_BAD_PAGE 6
#define KMEMU_EV_SLEEP_ATOMIC 7
#define KMEMU_EV_ALLOC_FAIL 8
#define KMEMU_EV_OOM 9
#define KMEMU_EV_SLAB 10
#define KMEMU_EV_FAULT_INJECTION 11
#define KMEMU_EV_KASAN 13 /* a KASAN report (kernel/kasan/report.c) */
#define KMEMU_EV_KMEMLEAK 14 /* a new unreferenced object (kernel/kmemleak.c) */

#define KMEMU_EV_MSG 160
#define KMEMU_EV_TRACE 16

struct kmemu_event {
	u32 type;
	u32 nr_trace;
	u64 args[8];             /* type-specific, see events.py */
	u64 trace[KMEMU_EV_TRACE]; /* return addresses, innermost first */
	char msg[KMEMU_EV_MSG];    /* the headline as printed on the console */
};

/* A request the host places before entering a wrapper or the call vector. */
struct kmemu_call_req {
	u64 fn;
	u64 args[6];
	u64 ret;
	u64 done;
};

/*
 * m.batch(): many calls in one guest entry.  The host writes ops[0..n) of
 * kmemu_batch_ring and calls kmemu_batch_run(n), which runs them in order in
 * process context and stores each result in its op's ret.  kmemu_batch_done
 * counts the ops that returned: after an oops it is the index of the op that
 * died.  A longer batch is run as several entries of at most KMEMU_BATCH_RING.
 */
#define KMEMU_BATCH_RING 512
#define KMEMU_BATCH_OP_WORDS 8 /* u64s per struct kmemu_batch_op */

struct kmemu_batch_op {
	u64 fn;
	u64 args[6];
	u64 ret;
};

/*
 * m.replay(): a trace's allocations run in the guest (kernel/replay.c).  The
 * host writes ops[0..n) of kmemu_replay_ring, 16 bytes each, and calls
 * kmemu_replay_run(n).  An op names a slot of kmemu_replay_slots (the live
 * pointers, a table the host allocates) and, for kmem_cache ops, an entry of
 * kmemu_replay_caches.  An allocation that returns NULL stores its op index in
 * kmemu_replay_failed[]; kmemu_replay_done counts the ops that returned.
 */
#define KMEMU_REPLAY_RING 4096
#define KMEMU_REPLAY_OP_BYTES 16
#define KMEMU_REPLAY_CACHES 1024
#define KMEMU_REPLAY_KMALLOC 1     /* slot = kmalloc(size, gfp) */
#define KMEMU_REPLAY_KFREE 2       /* kfree(slot) */
#define KMEMU_REPLAY_CACHE_ALLOC 3 /* slot = kmem_cache_alloc(caches[cache], gfp) */
#define KMEMU_REPLAY_CACHE_FREE 4  /* kmem_cache_free(caches[cache], slot) */
#define KMEMU_REPLAY_PAGES_ALLOC 5 /* slot = alloc_pages(gfp, order) */
#define KMEMU_REPLAY_PAGES_FREE 6  /* __free_pages(slot, order) */

struct kmemu_replay_op {
	u8 type;
	u8 order;
	u16 cache;
	u32 slot;
	u32 size;
	u32 gfp;
};

/*
 * A host call's stack holds its return address (kmemu_call_return+1) and, above
 * it, a word: KMEMU_CALL_QUIET there makes kmemu_call_return end in the idle
 * loop's state, at its hlt, without the CALL_DONE port write (the host's fast
 * path; entry.S compares against this literal value).
 */
#define KMEMU_CALL_QUIET 0x5154
extern u64 kmemu_idle_rsp; /* where a quiet call's end puts %rsp back (host.c) */

#define KMEMU_CALL_VECTOR 0xec
#define KMEMU_TEST_VECTOR 0x30

extern bool host_present;
extern struct kmemu_call_req kmemu_req;
extern struct kmemu_batch_op kmemu_batch_ring[KMEMU_BATCH_RING];
extern u64 kmemu_batch_done;

void host_detect(void);
void host_event(struct kmemu_event *ev);
void host_ctl(u32 what);
void kmemu_idle(void) __noreturn;
void kmemu_exit(u32 code) __noreturn;
u64 kmemu_batch_run(u64 n);
u64 kmemu_replay_run(u64 n);

#endif
