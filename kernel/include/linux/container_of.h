/*
 * <linux/container_of.h> - from a pointer to a member back to the
 * structure that contains it; the member's type is checked.
 */
#ifndef _LINUX_CONTAINER_OF_H
#define _LINUX_CONTAINER_OF_H
#include <linux/build_bug.h>
#include <linux/stddef.h>

#define container_of(ptr, type, member) ({                                   \
	void *__mptr = (void *)(ptr);                                        \
	static_assert(__same_type(*(ptr), ((type *)0)->member) ||            \
		      __same_type(*(ptr), void),                             \
		      "pointer type mismatch in container_of()");            \
	((type *)(__mptr - offsetof(type, member))); })

/* As container_of, but NULL stays NULL. */
#define container_of_safe(ptr, type, member) ({                              \
	__typeof__(ptr) __p = (ptr);                                         \
	__p ? container_of(__p, type, member) : (type *)0; })

#endif
