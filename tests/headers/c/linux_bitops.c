/* <linux/bitops.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/bitops.h>

int t(unsigned long *map, unsigned long w)
{
	unsigned long bit, n = 0;
	set_bit(1, map); clear_bit(2, map); change_bit(3, map);
	__set_bit(4, map); __clear_bit(5, map);
	n += test_and_set_bit(6, map) + test_and_clear_bit(7, map) + test_bit(8, map);
	for_each_set_bit(bit, map, 130)
		n += bit;
	return (int)(n + __ffs(w | 1) + __fls(w | 1) + (unsigned long)fls((unsigned int)w) +
		     hweight64(w) + find_first_zero_bit(map, 130));
}
