/* <linux/typecheck.h> - typecheck(type, x): a build warning (error under -Werror) unless x has type. */
#ifndef TYPECHECK_H_INCLUDED
#define TYPECHECK_H_INCLUDED

/* No variables (so no stray locals in the debug info of every function using it). */
#define typecheck(type, x) ({                                                \
	(void)((type *)0 == (__typeof__(x) *)0);                             \
	1; })

#endif
