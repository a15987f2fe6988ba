/*
 * <linux/log2.h> - integer base-2 logarithms and powers of two.
 * ilog2(n) is floor(log2(n)) (a constant when n is); n must be > 0.
 * roundup_pow_of_two(n) needs n > 0; order_base_2(n) is ceil(log2(n)).
 */
#ifndef _LINUX_LOG2_H
#define _LINUX_LOG2_H
#include <linux/bitops.h>
#include <linux/types.h>

static __always_inline __attribute_const__ int __ilog2_u32(u32 n)
{
	return fls(n) - 1;
}

static __always_inline __attribute_const__ int __ilog2_u64(u64 n)
{
	return fls64(n) - 1;
}

static __always_inline __attribute_const__ bool is_power_of_2(unsigned long n)
{
	return (n != 0 && ((n & (n - 1)) == 0));
}

static inline __attribute_const__ unsigned long __roundup_pow_of_two(unsigned long n)
{
	return 1UL << fls_long(n - 1);
}

static inline __attribute_const__ unsigned long __rounddown_pow_of_two(unsigned long n)
{
	return 1UL << (fls_long(n) - 1);
}

#define const_ilog2(n) ((n) < 2 ? 0 : 63 - __builtin_clzll((unsigned long long)(n)))

#define ilog2(n) \
	(__builtin_constant_p(n) ? ((n) < 2 ? 0 : const_ilog2(n)) : \
	 (sizeof(n) <= 4) ? __ilog2_u32(n) : __ilog2_u64(n))

#define roundup_pow_of_two(n) \
	(__builtin_constant_p(n) ? (((n) == 1) ? 1 : (1UL << (ilog2((n) - 1) + 1))) : \
	 __roundup_pow_of_two(n))

#define rounddown_pow_of_two(n) \
	(__builtin_constant_p(n) ? (1UL << ilog2(n)) : __rounddown_pow_of_two(n))

static inline __attribute_const__ int __order_base_2(unsigned long n)
{
	return n > 1 ? ilog2(n - 1) + 1 : 0;
}

#define order_base_2(n) \
	(__builtin_constant_p(n) ? (((n) == 0 || (n) == 1) ? 0 : ilog2((n) - 1) + 1) : \
	 __order_base_2(n))

#endif
