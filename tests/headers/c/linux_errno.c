/* <linux/errno.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/errno.h>

_Static_assert(EPERM == 1 && ENOMEM == 12 && EINVAL == 22 && EOVERFLOW == 75, "uapi");
_Static_assert(EAGAIN == EWOULDBLOCK && ENOTSUPP == 524 && EPROBE_DEFER == 517, "kernel");
int t(void) { return -ENOSPC; }
