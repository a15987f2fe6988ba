/* <linux/overflow.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/overflow.h>

struct flex { int n; long data[]; };
size_t t(size_t a, size_t b, int i, int j, struct flex *f)
{
	size_t r;
	int k;
	if (check_add_overflow(a, b, &r) || check_sub_overflow(a, b, &r) ||
	    check_mul_overflow(a, b, &r) || check_mul_overflow(i, j, &k) || check_shl_overflow(a, 3, &r))
		return 0;
	return size_mul(a, b) + size_add(a, b) + size_sub(a, b) + array_size(a, b) +
	       array3_size(a, b, 2) + struct_size(f, data, a) + flex_array_size(f, data, b) +
	       (size_t)type_max(int) + is_signed_type(int);
}
_Static_assert(struct_size((struct flex *)0, data, 3) == sizeof(struct flex) + 3 * sizeof(long), "");
