/* <linux/stddef.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/stddef.h>

struct s { int a; char b[3]; };
_Static_assert(offsetof(struct s, b) == 4 && sizeof_field(struct s, b) == 3 && offsetofend(struct s, b) == 7, "");
int t(void *p) { return p == NULL ? true : false; }
