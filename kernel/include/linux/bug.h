/*
 * <linux/bug.h> - BUG() and WARN() in Linux's wording, plus the
 * compile-time checks of <linux/build_bug.h>.
 *
 * BUG() prints "kernel BUG at file:line!" and executes ud2, so the
 * invalid-opcode trap produces the oops and the call trace (the call
 * fails with GuestOops under kmemu).  WARN*() print "WARNING: at
 * file:line ..." with a call trace, taint 'W', report a warn event and
 * return the condition, so `if (WARN_ON(x)) return;` works.
 */
#ifndef _LINUX_BUG_H
#define _LINUX_BUG_H
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/types.h>

void __bug_report(const char *file, int line);
void __warn(const char *file, int line, const char *fmt, ...) __printf(3, 4);

#define BUG() do {                                                           \
	__bug_report(__FILE__, __LINE__);                                    \
	__asm__ __volatile__("ud2");                                         \
	__builtin_unreachable();                                             \
} while (0)
#define BUG_ON(condition) do { if (unlikely(condition)) BUG(); } while (0)

#define WARN(condition, format...) ({                                        \
	bool __ret_warn_on = !!(condition);                                  \
	if (unlikely(__ret_warn_on))                                         \
		__warn(__FILE__, __LINE__, format);                          \
	unlikely(__ret_warn_on); })
#define WARN_ON(condition) ({                                                \
	bool __ret_warn_on = !!(condition);                                  \
	if (unlikely(__ret_warn_on))                                         \
		__warn(__FILE__, __LINE__, NULL);                            \
	unlikely(__ret_warn_on); })
#define WARN_ONCE(condition, format...) ({                                   \
	static bool __section(".data.once") __warned;                        \
	bool __ret_warn_once = !!(condition);                                \
	if (unlikely(__ret_warn_once && !__warned)) {                        \
		__warned = true;                                             \
		__warn(__FILE__, __LINE__, format);                          \
	}                                                                    \
	unlikely(__ret_warn_once); })
#define WARN_ON_ONCE(condition) ({                                           \
	static bool __section(".data.once") __warned;                        \
	bool __ret_warn_once = !!(condition);                                \
	if (unlikely(__ret_warn_once && !__warned)) {                        \
		__warned = true;                                             \
		__warn(__FILE__, __LINE__, NULL);                            \
	}                                                                    \
	unlikely(__ret_warn_once); })

#endif
