/* <linux/container_of.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/container_of.h>

struct outer { int a; long member; };
struct outer *t(long *p) { return container_of(p, struct outer, member); }
struct outer *t2(long *p) { return container_of_safe(p, struct outer, member); }
