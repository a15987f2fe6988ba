/* <linux/init.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/init.h>

static int __init hdr_init(void) { return 0; }
static void __exit hdr_exit(void) { }
static int hdr_data __initdata = 3;
int t(void) { initcall_t i = hdr_init; exitcall_t e = hdr_exit; e(); return i() + hdr_data; }
