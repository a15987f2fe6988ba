/*
 * bug.h - BUG(), WARN() and panic(), in Linux's wording.
 * BUG() prints "kernel BUG at file:line!" and executes ud2, so the invalid
 * opcode trap produces the oops and the call trace.
 */
#ifndef KMEMU_BUG_H
#define KMEMU_BUG_H
#include <types.h>

void __bug_report(const char *file, int line);
void __warn(const char *file, int line, const char *fmt, ...) __printf(3, 4);
void panic(const char *fmt, ...) __printf(1, 2) __noreturn;

#define BUG() do { __bug_report(__FILE__, __LINE__); __asm__ __volatile__("ud2"); __builtin_unreachable(); } while (0)
#define BUG_ON(c) do { if (unlikely(c)) BUG(); } while (0)
#define WARN(c, ...) ({ bool __w = !!(c); if (unlikely(__w)) __warn(__FILE__, __LINE__, __VA_ARGS__); unlikely(__w); })
#define WARN_ON(c) WARN(c, NULL)
#define WARN_ON_ONCE(c) ({ static bool __once; bool __w = !!(c); if (unlikely(__w) && !__once) { __once = true; __warn(__FILE__, __LINE__, NULL); } unlikely(__w); })

extern u32 taint_flags;
#define TAINT_PROPRIETARY_MODULE (1U << 0) /* 'P' */
#define TAINT_BAD_PAGE (1U << 5) /* 'B' */
#define TAINT_DIE (1U << 7)  /* 'D' */
#define TAINT_WARN (1U << 9) /* 'W' */
#define TAINT_OOT_MODULE (1U << 12) /* 'O' */
const char *print_tainted(void);

#endif
