/* <linux/printk.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/printk.h>

#undef pr_fmt /* a module defines it before its includes */
#define pr_fmt(fmt) "hdrtest: " fmt
int t(int x)
{
	pr_emerg("%d\n", x); pr_alert("%d\n", x); pr_crit("%d\n", x); pr_err("%d\n", x);
	pr_warn("%d\n", x); pr_notice("%d\n", x); pr_info("%d\n", x); pr_cont("%d\n", x);
	pr_debug("%d\n", x); pr_devel("%d\n", x); pr_info_once("%d\n", x); pr_warn_once("x\n");
	no_printk("%d", x);
	dump_stack();
	return printk(KERN_INFO "x=%d\n", x) + printk_get_level(KERN_ERR) + (int)*printk_skip_level(KERN_ERR "a");
}
