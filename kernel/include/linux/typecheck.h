/* <linux/typecheck.h> - typecheck(type, x): a build warning (error under -Werror) unless x has type. */
#ifndef TYPECHECK_H_INCLUDED
#define TYPECHECK_H_INCLUDED

#define typecheck(type, x) ({                                                \
	type __dummy;                                                        \
	__typeof__(x) __dummy2;                                              \
	(void)(&__dummy == &__dummy2);                                       \
	1; })

#endif
