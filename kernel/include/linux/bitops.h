/*
 * <linux/bitops.h> - bit operations on unsigned long bitmaps and words.
 *
 * set_bit/clear_bit/change_bit/test_and_*_bit are atomic (locked
 * read-modify-write: safe against interrupt handlers); the __ forms are not.
 * __ffs/__fls take a non-zero word and return a 0-based index; ffs/fls are
 * 1-based and return 0 for 0.  find_*_bit return size when nothing is found.
 */
#ifndef _LINUX_BITOPS_H
#define _LINUX_BITOPS_H
#include <linux/bits.h>
#include <linux/compiler.h>
#include <linux/types.h>

#define BITS_PER_TYPE(type) (sizeof(type) * BITS_PER_BYTE)
#define BITS_TO_LONGS(nr) (((nr) + BITS_PER_TYPE(long) - 1) / BITS_PER_TYPE(long))
#define BITS_TO_U64(nr) (((nr) + BITS_PER_TYPE(u64) - 1) / BITS_PER_TYPE(u64))
#define BITS_TO_U32(nr) (((nr) + BITS_PER_TYPE(u32) - 1) / BITS_PER_TYPE(u32))
#define BITS_TO_BYTES(nr) (((nr) + BITS_PER_TYPE(char) - 1) / BITS_PER_TYPE(char))

static __always_inline void set_bit(long nr, volatile unsigned long *addr)
{
	__atomic_fetch_or(addr + BIT_WORD(nr), BIT_MASK(nr), __ATOMIC_SEQ_CST);
}

static __always_inline void clear_bit(long nr, volatile unsigned long *addr)
{
	__atomic_fetch_and(addr + BIT_WORD(nr), ~BIT_MASK(nr), __ATOMIC_SEQ_CST);
}

static __always_inline void change_bit(long nr, volatile unsigned long *addr)
{
	__atomic_fetch_xor(addr + BIT_WORD(nr), BIT_MASK(nr), __ATOMIC_SEQ_CST);
}

static __always_inline bool test_and_set_bit(long nr, volatile unsigned long *addr)
{
	return __atomic_fetch_or(addr + BIT_WORD(nr), BIT_MASK(nr), __ATOMIC_SEQ_CST) & BIT_MASK(nr);
}

static __always_inline bool test_and_clear_bit(long nr, volatile unsigned long *addr)
{
	return __atomic_fetch_and(addr + BIT_WORD(nr), ~BIT_MASK(nr), __ATOMIC_SEQ_CST) &
	       BIT_MASK(nr);
}

static __always_inline bool test_and_change_bit(long nr, volatile unsigned long *addr)
{
	return __atomic_fetch_xor(addr + BIT_WORD(nr), BIT_MASK(nr), __ATOMIC_SEQ_CST) & BIT_MASK(nr);
}

static __always_inline void __set_bit(long nr, volatile unsigned long *addr)
{
	addr[BIT_WORD(nr)] |= BIT_MASK(nr);
}

static __always_inline void __clear_bit(long nr, volatile unsigned long *addr)
{
	addr[BIT_WORD(nr)] &= ~BIT_MASK(nr);
}

static __always_inline void __change_bit(long nr, volatile unsigned long *addr)
{
	addr[BIT_WORD(nr)] ^= BIT_MASK(nr);
}

static __always_inline bool __test_and_set_bit(long nr, volatile unsigned long *addr)
{
	bool old = addr[BIT_WORD(nr)] & BIT_MASK(nr);
	addr[BIT_WORD(nr)] |= BIT_MASK(nr);
	return old;
}

static __always_inline bool __test_and_clear_bit(long nr, volatile unsigned long *addr)
{
	bool old = addr[BIT_WORD(nr)] & BIT_MASK(nr);
	addr[BIT_WORD(nr)] &= ~BIT_MASK(nr);
	return old;
}

static __always_inline bool test_bit(long nr, const volatile unsigned long *addr)
{
	return 1UL & (addr[BIT_WORD(nr)] >> (nr & (BITS_PER_LONG - 1)));
}

/* Index of the lowest set bit of a non-zero word. */
static __always_inline unsigned long __ffs(unsigned long word)
{
	return (unsigned long)__builtin_ctzl(word);
}

/* Index of the highest set bit of a non-zero word. */
static __always_inline unsigned long __fls(unsigned long word)
{
	return BITS_PER_LONG - 1 - (unsigned long)__builtin_clzl(word);
}

/* Index of the lowest zero bit of a word that is not all ones. */
#define ffz(x) __ffs(~(x))

/* 1-based position of the lowest set bit, 0 for 0 (like libc ffs). */
static __always_inline int ffs(int x)
{
	return __builtin_ffs(x);
}

/* 1-based position of the highest set bit, 0 for 0: fls(1) == 1, fls(0x80000000) == 32. */
static __always_inline int fls(unsigned int x)
{
	return x ? 32 - __builtin_clz(x) : 0;
}

static __always_inline int fls64(u64 x)
{
	return x ? 64 - __builtin_clzll(x) : 0;
}

static __always_inline unsigned int fls_long(unsigned long l)
{
	return (unsigned int)fls64(l);
}

/*
 * Population count by adding bit fields in parallel (no popcnt instruction:
 * the kernel is built for baseline x86-64, and __builtin_popcount would call
 * libgcc, which the kernel does not link).
 */
static __always_inline unsigned int hweight32(unsigned int w)
{
	w -= (w >> 1) & 0x55555555u;
	w = (w & 0x33333333u) + ((w >> 2) & 0x33333333u);
	w = (w + (w >> 4)) & 0x0f0f0f0fu;
	return (w * 0x01010101u) >> 24;
}

static __always_inline unsigned long hweight64(u64 w)
{
	w -= (w >> 1) & 0x5555555555555555ULL;
	w = (w & 0x3333333333333333ULL) + ((w >> 2) & 0x3333333333333333ULL);
	w = (w + (w >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (unsigned long)((w * 0x0101010101010101ULL) >> 56);
}

static __always_inline unsigned int hweight16(unsigned int w) { return hweight32(w & 0xffff); }
static __always_inline unsigned int hweight8(unsigned int w) { return hweight32(w & 0xff); }
static __always_inline unsigned long hweight_long(unsigned long w) { return hweight64(w); }

static __always_inline u32 rol32(u32 word, unsigned int shift) { return (word << (shift & 31)) | (word >> ((-shift) & 31)); }
static __always_inline u32 ror32(u32 word, unsigned int shift) { return (word >> (shift & 31)) | (word << ((-shift) & 31)); }
static __always_inline u64 rol64(u64 word, unsigned int shift) { return (word << (shift & 63)) | (word >> ((-shift) & 63)); }
static __always_inline u64 ror64(u64 word, unsigned int shift) { return (word >> (shift & 63)) | (word << ((-shift) & 63)); }

/* Sign-extend the value whose sign bit is bit index (0-based). */
static __always_inline s32 sign_extend32(u32 value, int index)
{
	u8 shift = 31 - index;
	return (s32)(value << shift) >> shift;
}

static __always_inline s64 sign_extend64(u64 value, int index)
{
	u8 shift = 63 - index;
	return (s64)(value << shift) >> shift;
}

/* log2 of count rounded up: get_count_order(1) == 0, (3) == 2, (4) == 2; -1 for 0. */
static __always_inline int get_count_order(unsigned int count)
{
	if (count == 0)
		return -1;
	return fls(--count);
}

/* First set (or, with invert ~0UL, clear) bit at or after start, or size. */
static inline unsigned long _find_next_bit(const unsigned long *addr, unsigned long size,
					   unsigned long start, unsigned long invert)
{
	unsigned long tmp;

	if (start >= size)
		return size;
	tmp = (addr[BIT_WORD(start)] ^ invert) & (~0UL << (start & (BITS_PER_LONG - 1)));
	start &= ~(unsigned long)(BITS_PER_LONG - 1);
	while (!tmp) {
		start += BITS_PER_LONG;
		if (start >= size)
			return size;
		tmp = addr[BIT_WORD(start)] ^ invert;
	}
	start += __ffs(tmp);
	return start < size ? start : size;
}

static inline unsigned long find_next_bit(const unsigned long *addr, unsigned long size,
					  unsigned long offset)
{
	return _find_next_bit(addr, size, offset, 0UL);
}

static inline unsigned long find_next_zero_bit(const unsigned long *addr, unsigned long size,
					       unsigned long offset)
{
	return _find_next_bit(addr, size, offset, ~0UL);
}

#define find_first_bit(addr, size) find_next_bit((addr), (size), 0)
#define find_first_zero_bit(addr, size) find_next_zero_bit((addr), (size), 0)

#define for_each_set_bit(bit, addr, size) \
	for ((bit) = 0; (bit) = find_next_bit((addr), (size), (bit)), (bit) < (size); (bit)++)
#define for_each_clear_bit(bit, addr, size) \
	for ((bit) = 0; (bit) = find_next_zero_bit((addr), (size), (bit)), (bit) < (size); (bit)++)

#endif
