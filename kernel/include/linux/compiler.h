/*
 * <linux/compiler.h> - compiler attributes and the access helpers Linux
 * code expects: likely/unlikely, barrier, READ_ONCE/WRITE_ONCE (single,
 * untorn accesses of 1, 2, 4 or 8 bytes), OPTIMIZER_HIDE_VAR, and the
 * attribute spellings of include/linux/compiler_attributes.h.
 * GCC and clang only; everything is a macro or builtin, nothing is exported.
 */
#ifndef _LINUX_COMPILER_H
#define _LINUX_COMPILER_H

#define __always_inline inline __attribute__((__always_inline__))
#define noinline __attribute__((__noinline__))
#define __noreturn __attribute__((__noreturn__))
#define __packed __attribute__((__packed__))
#define __aligned(x) __attribute__((__aligned__(x)))
#define __used __attribute__((__used__))
#define __maybe_unused __attribute__((__unused__))
#define __always_unused __attribute__((__unused__))
#define __must_check __attribute__((__warn_unused_result__))
#define __printf(a, b) __attribute__((__format__(printf, a, b)))
#define __scanf(a, b) __attribute__((__format__(scanf, a, b)))
#define __section(s) __attribute__((__section__(s)))
#define __weak __attribute__((__weak__))
#define __cold __attribute__((__cold__))
#define __pure __attribute__((__pure__))
#define __attribute_const__ __attribute__((__const__))
#define __malloc __attribute__((__malloc__))
#define __alias(sym) __attribute__((__alias__(#sym)))
#define __copy(sym) __attribute__((__copy__(sym)))
#define __nonstring __attribute__((__nonstring__))
#define __visible __attribute__((__externally_visible__))
#define notrace __attribute__((__no_instrument_function__))
#define __noinline_for_stack noinline
#if __has_attribute(__fallthrough__)
#define fallthrough __attribute__((__fallthrough__))
#else
#define fallthrough do {} while (0)
#endif

/* Sparse annotations: no meaning to the compiler. */
#define __user
#define __kernel
#define __iomem
#define __force
#define __bitwise
#define __rcu
#define __percpu
#define __must_hold(x)
#define __acquires(x)
#define __releases(x)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define barrier() __asm__ __volatile__("" : : : "memory")
#define barrier_data(ptr) __asm__ __volatile__("" : : "r"(ptr) : "memory")
#define unreachable() __builtin_unreachable()

/* Hide a variable's value from the optimiser (it cannot assume anything). */
#define OPTIMIZER_HIDE_VAR(var) __asm__ ("" : "=r" (var) : "0" (var))

#define ___PASTE(a, b) a##b
#define __PASTE(a, b) ___PASTE(a, b)
#define __UNIQUE_ID(prefix) __PASTE(__PASTE(__UNIQUE_ID_, prefix), __COUNTER__)

#define __same_type(a, b) __builtin_types_compatible_p(__typeof__(a), __typeof__(b))

/*
 * 1 if x is an integer constant expression, without evaluating it
 * (the sizeof of a pointer-to-void vs pointer-to-int trick).
 */
#define __is_constexpr(x) \
	(sizeof(int) == sizeof(*(8 ? ((void *)((long)(x) * 0l)) : (int *)8)))

/* A scalar's type without qualifiers (so READ_ONCE of a volatile gives a plain value). */
#define __scalar_type_to_expr_cases(type) \
	unsigned type: (unsigned type)0, signed type: (signed type)0
#define __unqual_scalar_typeof(x) __typeof__(_Generic((x),                     \
	char: (char)0, __scalar_type_to_expr_cases(char),                     \
	__scalar_type_to_expr_cases(short), __scalar_type_to_expr_cases(int),  \
	__scalar_type_to_expr_cases(long), __scalar_type_to_expr_cases(long long), \
	default: (x)))

#define __native_word(t) \
	(sizeof(t) == sizeof(char) || sizeof(t) == sizeof(short) || \
	 sizeof(t) == sizeof(int) || sizeof(t) == sizeof(long))

/* READ_ONCE/WRITE_ONCE: one access of the whole object, never torn or elided. */
#define compiletime_assert_rwonce_type(t) \
	_Static_assert(__native_word(t) || sizeof(t) == sizeof(long long), \
		       "Unsupported access size for {READ,WRITE}_ONCE().")
#define __READ_ONCE(x) (*(const volatile __unqual_scalar_typeof(x) *)&(x))
#define READ_ONCE(x) ({ compiletime_assert_rwonce_type(x); __READ_ONCE(x); })
#define __WRITE_ONCE(x, val) do { *(volatile __typeof__(x) *)&(x) = (val); } while (0)
#define WRITE_ONCE(x, val) do { compiletime_assert_rwonce_type(x); __WRITE_ONCE(x, val); } while (0)

/* 0 at compile time, but a build error if the condition is true. */
#define __BUILD_BUG_ON_ZERO_MSG(e, msg) ((int)sizeof(struct { _Static_assert(!(e), msg); char _c; }) - 1)
#define __must_be_array(a) __BUILD_BUG_ON_ZERO_MSG(__same_type((a), &(a)[0]), "must be array")

#endif
