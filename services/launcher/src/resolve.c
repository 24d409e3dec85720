#define _GNU_SOURCE
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_SYMLINKS 40 /* same limit the kernel applies */
#define MAX_DEPTH 256

static bool force_walk;

void resolve_force_walk(bool on)
{
	force_walk = on;
}

static int openat2_in_root(int rootfd, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	int fd, tries = 0;

	/* EAGAIN: a concurrent rename or mount made the kernel give up on
	 * proving the walk stayed inside; simply retry a few times. */
	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && ++tries < 8);
	return fd;
}

/* Pop the next component off *rest; NULL at the end. */
static char *next_component(char **rest)
{
	char *p = *rest, *end;

	while (p && *p == '/')
		p++;
	if (!p || !*p)
		return NULL;
	end = strchr(p, '/');
	*rest = end ? end + 1 : NULL;
	if (end)
		*end = '\0';
	return p;
}

/* Replace the walk's remaining path with "<target>/<rest>". */
static int splice_symlink(char *buf, size_t len, const char *target, const char *rest)
{
	char tmp[PATH_MAX * 2];
	int n = snprintf(tmp, sizeof(tmp), "%s/%s", target, rest ? rest : "");

	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, tmp, (size_t)n + 1);
	return 0;
}

struct walk {
	int fds[MAX_DEPTH + 1]; /* fds[0] is rootfd, not owned */
	int depth;
};

static void walk_pop_to(struct walk *w, int depth)
{
	while (w->depth > depth)
		close(w->fds[w->depth--]);
}

/* One component: a symlink is read and spliced into buf instead of opened. */
static int walk_step(struct walk *w, const char *comp, char *buf, size_t len,
		     char **rest, int *links)
{
	char target[PATH_MAX];
	struct stat st;
	int fd = openat(w->fds[w->depth], comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISLNK(st.st_mode)) {
		if (w->depth == MAX_DEPTH) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		w->fds[++w->depth] = fd;
		return 0;
	}
	n = readlinkat(fd, "", target, sizeof(target) - 1);
	if (n < 0 || ++*links > MAX_SYMLINKS) {
		errno = n < 0 ? errno : ELOOP;
		goto fail;
	}
	target[n] = '\0';
	close(fd);
	if (target[0] == '/')
		walk_pop_to(w, 0); /* absolute links restart at the container root */
	if (splice_symlink(buf, len, target, *rest) < 0)
		return -1;
	*rest = buf;
	return 0;
fail:
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

int resolve_walk(int rootfd, const char *path)
{
	struct walk w = { .fds = { rootfd }, .depth = 0 };
	char buf[PATH_MAX * 2];
	char *rest = buf, *comp;
	int links = 0, fd;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	while ((comp = next_component(&rest))) {
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			walk_pop_to(&w, w.depth > 0 ? w.depth - 1 : 0); /* clamps at root */
			continue;
		}
		if (walk_step(&w, comp, buf, sizeof(buf), &rest, &links) < 0) {
			int saved = errno;
			walk_pop_to(&w, 0);
			errno = saved;
			return -1;
		}
	}
	if (w.depth == 0)
		return openat(rootfd, ".", O_PATH | O_CLOEXEC);
	fd = w.fds[w.depth--];
	walk_pop_to(&w, 0);
	return fd;
}

static int resolve_fd(int rootfd, const char *path)
{
	int fd;

	if (!force_walk) {
		fd = openat2_in_root(rootfd, path);
		/* ENOSYS: kernel < 5.6; EPERM: a seccomp profile that blocks openat2. */
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
			return fd;
	}
	return resolve_walk(rootfd, path);
}

/* Create the missing component name in the directory parent. */
static int create_component(int parent, const char *name, bool file)
{
	int fd;

	if (!file)
		return mkdirat(parent, name, 0755) < 0 && errno != EEXIST ? -1 : 0;
	fd = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	close(fd);
	return 0;
}

/* Walk prefixes of path; each missing one is created inside the already
 * resolved (and therefore contained) parent directory, then resolved again. */
static int resolve_creating(int rootfd, const char *path, bool file)
{
	size_t start = 0, end;
	int parent;

	if (strlen(path) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	parent = openat(rootfd, ".", O_PATH | O_CLOEXEC);
	while (parent >= 0) {
		char prefix[PATH_MAX], name[NAME_MAX + 1];
		bool last;
		int fd, saved;

		start += strspn(path + start, "/");
		if (!path[start])
			break;
		end = start + strcspn(path + start, "/");
		if (end - start > NAME_MAX) {
			close(parent);
			errno = ENAMETOOLONG;
			return -1;
		}
		snprintf(prefix, sizeof(prefix), "%.*s", (int)end, path);
		snprintf(name, sizeof(name), "%.*s", (int)(end - start), path + start);
		last = path[end + strspn(path + end, "/")] == '\0';
		fd = resolve_fd(rootfd, prefix);
		if (fd < 0 && errno == ENOENT && create_component(parent, name, file && last) == 0)
			fd = resolve_fd(rootfd, prefix);
		saved = errno;
		close(parent);
		errno = saved;
		parent = fd;
		start = end;
	}
	return parent;
}

int resolve_in_root(int rootfd, const char *path, enum resolve_create create,
		    struct launch_error *err)
{
	int fd = resolve_fd(rootfd, path);

	if (fd < 0 && errno == ENOENT && create != RESOLVE_EXISTING)
		fd = resolve_creating(rootfd, path, create == RESOLVE_MKFILE);
	if (fd < 0)
		return err_sys(err, "resolve in container root", path);
	return fd;
}

int resolve_check_no_symlinks(int rootfd, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	if (errno == ELOOP)
		return -1;
	if (errno == ENOSYS || errno == EPERM) { /* no openat2: lstat each prefix */
		char buf[PATH_MAX];
		struct stat st;
		size_t len = strlen(path);
		for (size_t i = 1; i <= len; i++) {
			if (path[i] != '/' && path[i] != '\0')
				continue;
			snprintf(buf, sizeof(buf), "%.*s", (int)i, path);
			if (fstatat(rootfd, buf[0] == '/' ? buf + 1 : buf, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return 0;
			if (S_ISLNK(st.st_mode)) {
				errno = ELOOP;
				return -1;
			}
		}
		return 0;
	}
	return 0;
}
