/*
 * <linux/err.h> - errors returned inside pointers.  The top MAX_ERRNO
 * values of the address space (-4095..-1) are never valid kernel pointers,
 * so ERR_PTR(-ENOMEM) carries an errno where a pointer is expected.
 */
#ifndef _LINUX_ERR_H
#define _LINUX_ERR_H
#include <linux/compiler.h>
#include <linux/types.h>
#include <linux/errno.h>

#define MAX_ERRNO 4095
#define IS_ERR_VALUE(x) unlikely((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)

static inline void *__must_check ERR_PTR(long error)
{
	return (void *)error;
}

static inline long __must_check PTR_ERR(const void *ptr)
{
	return (long)ptr;
}

static inline bool __must_check IS_ERR(const void *ptr)
{
	return IS_ERR_VALUE((unsigned long)ptr);
}

static inline bool __must_check IS_ERR_OR_NULL(const void *ptr)
{
	return unlikely(!ptr) || IS_ERR_VALUE((unsigned long)ptr);
}

/* The same error, as a pointer of another type. */
static inline void *__must_check ERR_CAST(const void *ptr)
{
	return (void *)ptr;
}

/* 0 for a valid pointer (or NULL), the errno for an error pointer. */
static inline int __must_check PTR_ERR_OR_ZERO(const void *ptr)
{
	if (IS_ERR(ptr))
		return (int)PTR_ERR(ptr);
	return 0;
}

#endif
