/* <linux/module.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/module.h>

static int __init hdr_init(void) { pr_info("loaded\n"); return 0; }
static void __exit hdr_exit(void) { }
module_init(hdr_init);
module_exit(hdr_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("kmemu");
MODULE_DESCRIPTION("header test");
MODULE_VERSION("1.0");
struct module *t(void) { return THIS_MODULE; }
