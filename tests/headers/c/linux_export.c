/* <linux/export.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/export.h>

int hdrtest_exported_fn(int x);
int hdrtest_exported_fn(int x) { return x + 1; }
EXPORT_SYMBOL(hdrtest_exported_fn);
int hdrtest_exported_gpl;
EXPORT_SYMBOL_GPL(hdrtest_exported_gpl);
_Static_assert(sizeof(struct kernel_symbol) == 16, "value + name");
