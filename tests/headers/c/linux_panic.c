/* <linux/panic.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/panic.h>

void t(int x) { if (x) panic("x=%d", x); }
