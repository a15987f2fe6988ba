/*
 * <linux/stddef.h> - NULL, true/false, offsetof and the struct-member
 * helpers (sizeof_field, offsetofend), as Linux defines them.
 */
#ifndef _LINUX_STDDEF_H
#define _LINUX_STDDEF_H

#undef NULL
#define NULL ((void *)0)

enum {
	false = 0,
	true = 1
};

#undef offsetof
#define offsetof(TYPE, MEMBER) __builtin_offsetof(TYPE, MEMBER)

/* The size of one member of a struct. */
#define sizeof_field(TYPE, MEMBER) sizeof((((TYPE *)0)->MEMBER))

/* The offset of the first byte after MEMBER. */
#define offsetofend(TYPE, MEMBER) (offsetof(TYPE, MEMBER) + sizeof_field(TYPE, MEMBER))

#endif
