/*
 * printk.c - the kernel console.
 *
 * printk() formats into a line buffer, appends the text to log_buf (a ring
 * of LOG_BUF_LEN bytes; log_next counts every byte ever logged, so the ring
 * holds bytes [log_next - LOG_BUF_LEN, log_next)) and writes it to the
 * console (under kmemu: one port write per line, see console_write).
 * No timestamps: the boot log is deterministic so tests can compare it.
 * Callers may be in any context; printk disables interrupts around the ring
 * update so an interrupt's printk never interleaves inside a line.
 *
 * KERN_* prefixes (<linux/printk.h>) are removed from the text; kmemu shows
 * every level, as Linux does with ignore_loglevel.
 *
 * Formats: %d %i %u %x %X %o %c %s %p %px %pS %% with flags "-0#+ ", a
 * width (or *), a precision for strings, and the l, ll, z, h, hh length
 * modifiers.  kmemu differs from Linux on purpose in one place: %p prints the
 * raw pointer (no hashing), because finding addresses is the point here.
 */
#include <linux/export.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/io.h>
#include <kmemu/kallsyms.h>
#include <kmemu/log.h>

char log_buf[LOG_BUF_LEN];
u64 log_next;

struct outbuf {
	char *buf;
	size_t size;
	size_t len; /* would-be length, may exceed size */
};

static void put(struct outbuf *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_str(struct outbuf *o, const char *s, int width, int prec, bool left)
{
	int n = (int)strnlen(s, prec < 0 ? (size_t)-1 : (size_t)prec);
	if (!left)
		for (; width > n; width--)
			put(o, ' ');
	for (int i = 0; i < n; i++)
		put(o, s[i]);
	for (; width > n; width--)
		put(o, ' ');
}

static void put_num(struct outbuf *o, u64 v, bool neg, unsigned base, bool upper,
		    int width, bool zero, bool left, char sign, bool alt)
{
	char tmp[24];
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0, pre = 0;
	char prefix[3];

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (neg)
		prefix[pre++] = '-';
	else if (sign)
		prefix[pre++] = sign;
	if (alt && base == 16) {
		prefix[pre++] = '0';
		prefix[pre++] = upper ? 'X' : 'x';
	}
	int pad = width - n - pre;
	if (!left && !zero)
		for (; pad > 0; pad--)
			put(o, ' ');
	for (int i = 0; i < pre; i++)
		put(o, prefix[i]);
	if (!left && zero)
		for (; pad > 0; pad--)
			put(o, '0');
	while (n)
		put(o, tmp[--n]);
	for (; pad > 0; pad--)
		put(o, ' ');
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct outbuf o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		bool left = false, zero = false, alt = false;
		char sign = 0;
		int width = 0, prec = -1, lng = 0;
		for (;; fmt++) {
			char f = fmt[1];
			if (f == '-') left = true;
			else if (f == '0') zero = true;
			else if (f == '#') alt = true;
			else if (f == '+') sign = '+';
			else if (f == ' ') { if (!sign) sign = ' '; }
			else break;
		}
		fmt++;
		if (*fmt == '*') {
			width = va_arg(ap, int);
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			prec = 0;
			if (*fmt == '*') {
				prec = va_arg(ap, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					prec = prec * 10 + (*fmt++ - '0');
			}
		}
		for (;; fmt++) {
			if (*fmt == 'l' || *fmt == 'z' || *fmt == 't' || *fmt == 'j') lng = 2;
			else if (*fmt == 'h') lng = lng ? lng : -1;
			else break;
		}
		switch (*fmt) {
		case 'd': case 'i': {
			s64 v = lng == 2 ? va_arg(ap, s64) : va_arg(ap, int);
			put_num(&o, v < 0 ? -(u64)v : (u64)v, v < 0, 10, false, width, zero, left, sign, false);
			break;
		}
		case 'u': case 'x': case 'X': case 'o': {
			u64 v = lng == 2 ? va_arg(ap, u64) : va_arg(ap, unsigned int);
			unsigned base = *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16;
			put_num(&o, v, false, base, *fmt == 'X', width, zero, left, 0, alt);
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			put_str(&o, s ? s : "(null)", width, prec, left);
			break;
		}
		case 'p': {
			u64 v = (u64)va_arg(ap, void *);
			if (fmt[1] == 'S' || fmt[1] == 's') {
				char sym[128];
				bool with_size = fmt[1] == 'S';
				fmt++;
				sprint_symbol(sym, sizeof(sym), v);
				if (!with_size) {
					char *slash = strchr(sym, '/');
					if (slash)
						*slash = 0;
				}
				put_str(&o, sym, width, -1, left);
			} else {
				if (fmt[1] == 'x')
					fmt++;
				put_num(&o, v, false, 16, false, width ? width : 16, true, left, 0, false);
			}
			break;
		}
		case '%':
			put(&o, '%');
			break;
		case 0:
			fmt--;
			break;
		default:
			put(&o, '%');
			put(&o, *fmt);
			break;
		}
	}
	if (o.size)
		o.buf[o.len < o.size ? o.len : o.size - 1] = 0;
	return (int)o.len;
}

EXPORT_SYMBOL(vsnprintf);

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
EXPORT_SYMBOL(snprintf);

/* vscnprintf - like vsnprintf, but returns what was written (without the NUL). */
int vscnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, size, fmt, ap);
	if (likely((size_t)n < size))
		return n;
	return size ? (int)size - 1 : 0;
}
EXPORT_SYMBOL(vscnprintf);

int scnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vscnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
EXPORT_SYMBOL(scnprintf);

/* vsprintf - no bound: the caller promises the buffer is large enough. */
int vsprintf(char *buf, const char *fmt, va_list ap)
{
	return vsnprintf(buf, INT_MAX, fmt, ap);
}
EXPORT_SYMBOL(vsprintf);

int sprintf(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, INT_MAX, fmt, ap);
	va_end(ap);
	return n;
}
EXPORT_SYMBOL(sprintf);

/* kvasprintf - the formatted text in a kmalloc'ed buffer of exactly its size, or NULL. */
char *kvasprintf(gfp_t gfp, const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int len = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	char *p = kmalloc((size_t)len + 1, gfp);
	if (p)
		vsnprintf(p, (size_t)len + 1, fmt, ap);
	return p;
}
EXPORT_SYMBOL(kvasprintf);

char *kasprintf(gfp_t gfp, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = kvasprintf(gfp, fmt, ap);
	va_end(ap);
	return p;
}
EXPORT_SYMBOL(kasprintf);

/*
 * console_write - send the line just logged (@s, @n bytes) to the console.
 * Under kmemu one port write tells the host the line is the last @n bytes
 * of log_buf, which it reads from the ring (a 10,000-entry E820 map prints
 * 1 MB at boot: an exit per byte cost ~1 s of it); elsewhere every byte
 * goes to the debug console port.  Called after log_store(), IRQs off.
 */
static void console_write(const char *s, size_t n)
{
	if (host_present) {
		barrier(); /* the ring is written first */
		outl(KMEMU_PORT_CONSOLE_LOG, (u32)n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		outb(KMEMU_PORT_CONSOLE, (u8)s[i]);
}

static void log_store(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		log_buf[(log_next + i) % LOG_BUF_LEN] = s[i];
	log_next += n;
}

/*
 * vprintk - format, drop the KERN_* level prefixes (every level is shown:
 * the console is the log) and append to the log and the console.
 * Returns the number of characters formatted, prefixes included (as Linux).
 */
int vprintk(const char *fmt, va_list ap)
{
	char buf[512];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	const char *line = printk_skip_level(buf);
	size_t len = strlen(line);
	unsigned long flags;
	local_irq_save(flags);
	log_store(line, len);
	console_write(line, len);
	local_irq_restore(flags);
	return n;
}
EXPORT_SYMBOL(vprintk);

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintk(fmt, ap);
	va_end(ap);
	return n;
}
EXPORT_SYMBOL(printk);
