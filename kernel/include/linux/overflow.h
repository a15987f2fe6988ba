/*
 * <linux/overflow.h> - arithmetic that reports overflow.
 *
 * check_{add,sub,mul}_overflow(a, b, d) store the (wrapped) result in *d
 * and return true if it did not fit; a, b and *d must have the same type
 * (a build error otherwise, as in Linux 6.1).  size_mul/size_add/size_sub
 * saturate at SIZE_MAX, so an allocation sized by them fails instead of
 * being too small; struct_size/array_size/flex_array_size build on them.
 */
#ifndef _LINUX_OVERFLOW_H
#define _LINUX_OVERFLOW_H
#include <linux/compiler.h>
#include <linux/limits.h>
#include <linux/types.h>

#define is_signed_type(type) (((type)(-1)) < (type)1)
#define __type_half_max(type) ((type)1 << (8 * sizeof(type) - 1 - is_signed_type(type)))
#define type_max(T) ((T)((__type_half_max(T) - 1) + __type_half_max(T)))
#define type_min(T) ((T)((T)-type_max(T) - (T)1))

/* Used when overflow is not an error (the caller keeps the wrapped value). */
static inline bool __must_check __must_check_overflow(bool overflow)
{
	return unlikely(overflow);
}

#define check_add_overflow(a, b, d) __must_check_overflow(({                 \
	__typeof__(a) __a = (a);                                             \
	__typeof__(b) __b = (b);                                             \
	__typeof__(d) __d = (d);                                             \
	(void)(&__a == &__b);                                                \
	(void)(&__a == __d);                                                 \
	__builtin_add_overflow(__a, __b, __d); }))

#define check_sub_overflow(a, b, d) __must_check_overflow(({                 \
	__typeof__(a) __a = (a);                                             \
	__typeof__(b) __b = (b);                                             \
	__typeof__(d) __d = (d);                                             \
	(void)(&__a == &__b);                                                \
	(void)(&__a == __d);                                                 \
	__builtin_sub_overflow(__a, __b, __d); }))

#define check_mul_overflow(a, b, d) __must_check_overflow(({                 \
	__typeof__(a) __a = (a);                                             \
	__typeof__(b) __b = (b);                                             \
	__typeof__(d) __d = (d);                                             \
	(void)(&__a == &__b);                                                \
	(void)(&__a == __d);                                                 \
	__builtin_mul_overflow(__a, __b, __d); }))

/*
 * *d = a << s; true (and *d the wrapped value) if bits were lost, the
 * result changed sign, a was negative or s was too large.
 */
/* Sign tests that do not warn "comparison is always true" for unsigned types. */
#define is_non_negative(a) ((a) > 0 || (a) == 0)
#define is_negative(a) (!(is_non_negative(a)))

#define check_shl_overflow(a, s, d) __must_check_overflow(({                 \
	__typeof__(a) _a = a;                                                \
	__typeof__(s) _s = s;                                                \
	__typeof__(d) _d = d;                                                \
	u64 _a_full = _a;                                                    \
	unsigned int _to_shift =                                             \
		is_non_negative(_s) && (u64)_s < 8 * sizeof(*d) ? (unsigned int)_s : 0; \
	*_d = (_a_full << _to_shift);                                        \
	((u64)_to_shift != (u64)_s || is_negative(*_d) || is_negative(_a) || \
	 (u64)(*_d >> _to_shift) != (u64)_a); }))

/* factor1 * factor2, or SIZE_MAX if that overflows. */
static inline size_t __must_check size_mul(size_t factor1, size_t factor2)
{
	size_t bytes;

	if (check_mul_overflow(factor1, factor2, &bytes))
		return SIZE_MAX;
	return bytes;
}

/* addend1 + addend2, or SIZE_MAX if that overflows. */
static inline size_t __must_check size_add(size_t addend1, size_t addend2)
{
	size_t bytes;

	if (check_add_overflow(addend1, addend2, &bytes))
		return SIZE_MAX;
	return bytes;
}

/* minuend - subtrahend, or SIZE_MAX if either is SIZE_MAX or it would go below 0. */
static inline size_t __must_check size_sub(size_t minuend, size_t subtrahend)
{
	size_t bytes;

	if (minuend == SIZE_MAX || subtrahend == SIZE_MAX ||
	    check_sub_overflow(minuend, subtrahend, &bytes))
		return SIZE_MAX;
	return bytes;
}

#define array_size(a, b) size_mul(a, b)
#define array3_size(a, b, c) size_mul(size_mul(a, b), c)

/* Bytes of count elements of the flexible array p->member. */
#define flex_array_size(p, member, count)                                    \
	__builtin_choose_expr(__is_constexpr(count),                         \
		(count) * sizeof(*(p)->member) + __must_be_array((p)->member), \
		size_mul(count, sizeof(*(p)->member) + __must_be_array((p)->member)))

/* Bytes of *p with count elements in its trailing flexible array member. */
#define struct_size(p, member, count)                                        \
	__builtin_choose_expr(__is_constexpr(count),                         \
		sizeof(*(p)) + flex_array_size(p, member, count),            \
		size_add(sizeof(*(p)), flex_array_size(p, member, count)))

#endif
