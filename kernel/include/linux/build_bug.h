/*
 * <linux/build_bug.h> - compile-time assertions: BUILD_BUG_ON(cond) fails
 * the build when cond is a true constant; BUILD_BUG_ON_ZERO is the same as
 * an expression worth 0; static_assert with an optional message.
 */
#ifndef _LINUX_BUILD_BUG_H
#define _LINUX_BUILD_BUG_H
#include <linux/compiler.h>

#define BUILD_BUG_ON_ZERO(e) __BUILD_BUG_ON_ZERO_MSG(e, "BUILD_BUG_ON_ZERO failed: " #e)
#define BUILD_BUG_ON_MSG(cond, msg) do { _Static_assert(!(cond), msg); } while (0)
#define BUILD_BUG_ON(condition) BUILD_BUG_ON_MSG(condition, "BUILD_BUG_ON failed: " #condition)
#define BUILD_BUG_ON_NOT_POWER_OF_2(n) BUILD_BUG_ON((n) == 0 || (((n) & ((n) - 1)) != 0))
#define BUILD_BUG() BUILD_BUG_ON_MSG(1, "BUILD_BUG failed")

#define static_assert(expr, ...) __static_assert(expr, ##__VA_ARGS__, #expr)
#define __static_assert(expr, msg, ...) _Static_assert(expr, msg)

#endif
