/* Resolving container paths inside the root: symlinks and ".." behave as if
 * rootfd were "/", so nothing in the rootfs can point a mount outside it. */
#ifndef SKIFF_RESOLVE_H
#define SKIFF_RESOLVE_H

#include <stdbool.h>

#include "util.h"

enum resolve_create { RESOLVE_EXISTING, RESOLVE_MKDIR, RESOLVE_MKFILE };

/* Open path (absolute or relative, always taken from rootfd) as an O_PATH
 * fd. With RESOLVE_MKDIR/RESOLVE_MKFILE missing components are created as
 * directories, the last one as a directory or an empty file. */
int resolve_in_root(int rootfd, const char *path, enum resolve_create create,
		    struct launch_error *err);

/* 0 when no component of path (inside rootfd) is a symlink, or path does
 * not exist; -1 with errno ELOOP when one is. */
int resolve_check_no_symlinks(int rootfd, const char *path);

/* Userspace walk used when openat2() is unavailable (old kernel, seccomp).
 * Returns an O_PATH fd, or -1 with errno set. Exposed for tests. */
int resolve_walk(int rootfd, const char *path);

/* Force the userspace walk (tests) instead of openat2(RESOLVE_IN_ROOT). */
void resolve_force_walk(bool on);

#endif
