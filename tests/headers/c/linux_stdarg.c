/* <linux/stdarg.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/stdarg.h>

int t(int n, ...)
{
	va_list ap, aq;
	int s = 0;
	va_start(ap, n);
	va_copy(aq, ap);
	for (int i = 0; i < n; i++)
		s += va_arg(ap, int);
	va_end(aq);
	va_end(ap);
	return s;
}
