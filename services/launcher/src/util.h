/* Shared error type, exit codes and cleanup helpers. */
#ifndef SKIFF_UTIL_H
#define SKIFF_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit codes of the launcher itself; the container's own status is passed
 * through unchanged (or 128+N when it died from signal N). */
enum {
	EXIT_LAUNCH_FAILED = 125, /* usage, config or container setup failure */
	EXIT_CANNOT_EXEC = 126,   /* process.args[0] exists but cannot be run */
	EXIT_NOT_FOUND = 127,     /* process.args[0] not found */
};

/* An error as a value. It is a plain fixed-size struct so the container
 * init can ship it verbatim to the parent over the sync socket. */
struct launch_error {
	int exit_code;         /* one of EXIT_* */
	int errnum;            /* errno, or 0 when detail says what went wrong */
	char op[64];           /* operation, e.g. "mount proc on", "config.json" */
	char path[PATH_MAX];   /* path or field the operation was applied to */
	char detail[256];      /* used instead of strerror(errnum) when set */
};

/* Record errno for op/path; returns -1 so callers can `return err_sys(...)`. */
int err_sys(struct launch_error *err, const char *op, const char *path);
/* Record a message; returns -1. */
int err_msg(struct launch_error *err, const char *op, const char *path,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Same, with an explicit errno (for errors that are not in errno). */
int err_errno(struct launch_error *err, int errnum, const char *op,
	      const char *path);
/* Render as "<op> <path>: <reason>" (path part omitted when empty). */
void err_format(const struct launch_error *err, char *buf, size_t len);

/* Cleanup helpers: variables close/free themselves when they go out of scope. */
void cleanup_fdp(int *fd);
void cleanup_freep(void *p);
#define _cleanup_fd_ __attribute__((cleanup(cleanup_fdp)))
#define _cleanup_free_ __attribute__((cleanup(cleanup_freep)))

/* Hand ownership out of a _cleanup_ variable. */
static inline int take_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

/* Default dispositions and an empty mask for a process about to exec: the mask and ignored
 * signals survive execve (handlers do not). */
void reset_signals(void);

/* snprintf that reports truncation as -1 with ENAMETOOLONG. */
int path_join(char *buf, size_t len, const char *a, const char *b);

/* write()/read() that retry on EINTR and short counts. */
int write_all(int fd, const void *buf, size_t len);

/*
 * Takes now the page faults the next steps would take: touches stack_bytes of stack below the
 * caller and heap_bytes of heap, which malloc then keeps (its trim and mmap thresholds are
 * raised above that size). For a process that waits before its work, after a fork (copy on
 * write) or a fresh exec. Best effort.
 */
void prefault_memory(size_t stack_bytes, size_t heap_bytes);

#endif
