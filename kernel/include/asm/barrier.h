/*
 * <asm/barrier.h> - memory barriers on x86-64: loads are not reordered with
 * loads nor stores with stores, so the smp_ forms are compiler barriers;
 * only store->load ordering needs mfence (smp_mb).
 */
#ifndef _ASM_X86_BARRIER_H
#define _ASM_X86_BARRIER_H
#include <linux/compiler.h>

#define mb() __asm__ __volatile__("mfence" ::: "memory")
#define rmb() __asm__ __volatile__("lfence" ::: "memory")
#define wmb() __asm__ __volatile__("sfence" ::: "memory")
#define smp_mb() __asm__ __volatile__("lock; addl $0,-4(%%rsp)" ::: "memory", "cc")
#define smp_rmb() barrier()
#define smp_wmb() barrier()

#define smp_store_release(p, v) do { barrier(); WRITE_ONCE(*(p), (v)); } while (0)
#define smp_load_acquire(p) ({ __unqual_scalar_typeof(*(p)) ___p1 = READ_ONCE(*(p)); barrier(); ___p1; })

#endif
