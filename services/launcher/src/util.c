#include "util.h"

#include <errno.h>
#include <signal.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void err_set(struct launch_error *err, int errnum, const char *op,
		    const char *path)
{
	err->exit_code = EXIT_LAUNCH_FAILED;
	err->errnum = errnum;
	err->detail[0] = '\0';
	snprintf(err->op, sizeof(err->op), "%s", op ? op : "");
	snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
}

int err_sys(struct launch_error *err, const char *op, const char *path)
{
	err_set(err, errno, op, path);
	return -1;
}

int err_errno(struct launch_error *err, int errnum, const char *op,
	      const char *path)
{
	err_set(err, errnum, op, path);
	return -1;
}

int err_msg(struct launch_error *err, const char *op, const char *path,
	    const char *fmt, ...)
{
	va_list ap;

	err_set(err, 0, op, path);
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

void err_format(const struct launch_error *err, char *buf, size_t len)
{
	const char *reason = err->detail[0] ? err->detail : strerror(err->errnum);

	if (err->path[0])
		snprintf(buf, len, "%s %s: %s", err->op, err->path, reason);
	else if (err->op[0])
		snprintf(buf, len, "%s: %s", err->op, reason);
	else
		snprintf(buf, len, "%s", reason);
}

/* The launcher blocks the signals it forwards, and its caller may have ignored some (SIGPIPE
 * often). Real-time signals are left alone: rarely ignored, and 30 fewer syscalls on every
 * start. */
void reset_signals(void)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;

	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void cleanup_fdp(int *fd)
{
	if (*fd >= 0) {
		int saved = errno; /* keep errno intact for err_sys after return */
		close(*fd);
		errno = saved;
	}
}

void cleanup_freep(void *p)
{
	free(*(void **)p);
}

int path_join(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s/%s", a, b);

	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

#define PAGE 4096
#define PREFAULT_STACK_MAX (256 * 1024)

static __attribute__((noinline)) void touch_stack(size_t bytes)
{
	volatile char area[PREFAULT_STACK_MAX];

	/* from the top: the pages next to the caller's frame, which the stack grows into */
	for (size_t i = 0; i < bytes && i < sizeof(area); i += PAGE)
		area[sizeof(area) - 1 - i] = 0;
}

void prefault_memory(size_t stack_bytes, size_t heap_bytes)
{
	volatile char *heap;

	touch_stack(stack_bytes);
	if (!mallopt(M_TRIM_THRESHOLD, (int)(2 * heap_bytes)) || !mallopt(M_MMAP_THRESHOLD, (int)(2 * heap_bytes)))
		return;
	heap = malloc(heap_bytes);
	if (!heap)
		return;
	for (size_t i = 0; i < heap_bytes; i += PAGE)
		heap[i] = 0;
	free((void *)heap);
}
