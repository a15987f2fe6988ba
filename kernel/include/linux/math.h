/* <linux/math.h> - rounding and division helpers (arguments evaluated as Linux does). */
#ifndef _LINUX_MATH_H
#define _LINUX_MATH_H
#include <linux/types.h>

/* Power-of-two rounding: y must be a power of 2. */
#define __round_mask(x, y) ((__typeof__(x))((y) - 1))
#define round_up(x, y) ((((x) - 1) | __round_mask(x, y)) + 1)
#define round_down(x, y) ((x) & ~__round_mask(x, y))

#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define DIV_ROUND_DOWN_ULL(ll, d) ({ unsigned long long _tmp = (ll); _tmp / (d); })
#define DIV_ROUND_UP_ULL(ll, d) DIV_ROUND_DOWN_ULL((unsigned long long)(ll) + (d) - 1, (d))

/* Any y. */
#define roundup(x, y) ({ __typeof__(y) __y = (y); (((x) + (__y - 1)) / __y) * __y; })
#define rounddown(x, y) ({ __typeof__(x) __x = (x); __x - (__x % (y)); })

#define DIV_ROUND_CLOSEST(x, divisor) ({                                     \
	__typeof__(x) __x = (x);                                             \
	__typeof__(divisor) __d = (divisor);                                 \
	(((__typeof__(x))-1) > 0 || ((__typeof__(divisor))-1) > 0 ||         \
	 (((__x) > 0) == ((__d) > 0))) ?                                     \
		(((__x) + ((__d) / 2)) / (__d)) :                            \
		(((__x) - ((__d) / 2)) / (__d)); })

#define abs(x) __builtin_choose_expr(sizeof(x) == sizeof(long long),        \
	__builtin_llabs((long long)(x)), __builtin_abs((int)(x)))

#endif
