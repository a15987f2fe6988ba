/* <linux/kernel.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/kernel.h>

static int arr[5];
long t(const char *s, unsigned int a, unsigned long b)
{
	char buf[16];
	char *end;
	might_sleep();
	might_sleep_if(a);
	pr_info("%s %zu %u %lu\n", s, ARRAY_SIZE(arr), a, b);
	snprintf(buf, sizeof(buf), "%d", (int)min(a, 3u));
	return (long)simple_strtoull(s, &end, 0) + (long)memparse(s, NULL) +
	       (long)max_t(unsigned long, a, b) + upper_32_bits(b) + lower_32_bits(b) +
	       clamp(a, 1u, 9u) + DIV_ROUND_UP(b, 4) + ilog2(b | 1) +
	       (long)sizeof(__stringify(KBUILD_MODNAME));
}
void t2(void) { panic("hdrtest %d", 1); }
