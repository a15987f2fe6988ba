/* <linux/typecheck.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/typecheck.h>

int t(unsigned long flags) { return typecheck(unsigned long, flags); }
