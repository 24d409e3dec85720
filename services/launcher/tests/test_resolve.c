#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "resolve.h"

/* Layout, with "outside" as the host directory holding the root:
 *   outside/secret                      must never be reached
 *   outside/root/{etc,a/b}
 *   root/to_root -> /        root/up -> ../../..     root/etc_abs -> /etc
 *   root/a/rel -> ../etc     root/a/escape -> ../../secret
 *   root/loop -> loop        root/file (regular file)
 *   root/a/b/abs -> /a       root/a/b/deep_up -> ../../../../etc */
static char outside[64], root[PATH_MAX];

static void sh(const char *fmt, const char *arg)
{
	char cmd[PATH_MAX * 2];

	snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg, arg, arg, arg, arg, arg, arg);
	if (system(cmd) != 0)
		fprintf(stderr, "setup failed: %s\n", cmd);
}

static void make_tree(void)
{
	char tmpl[] = "/tmp/skiff-resolve-XXXXXX";

	snprintf(outside, sizeof(outside), "%s", mkdtemp(tmpl));
	snprintf(root, sizeof(root), "%s/root", outside);
	sh("mkdir -p %s/root/etc %s/root/a/b && touch %s/secret %s/root/file && "
	   "ln -s / %s/root/to_root && ln -s ../../.. %s/root/up && "
	   "ln -s /etc %s/root/etc_abs && ln -s ../etc %s/root/a/rel && "
	   "ln -s ../../secret %s/root/a/escape", outside);
	sh("ln -s loop %s/root/loop && ln -s /a %s/root/a/b/abs && "
	   "ln -s ../../../../etc %s/root/a/b/deep_up", outside);
}

/* Where an fd points, relative to root ("" for root itself). */
static const char *where(int fd)
{
	static char buf[PATH_MAX];
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return "(unreadable)";
	buf[n] = '\0';
	if (strncmp(buf, root, strlen(root)) != 0)
		return buf; /* escaped: the full host path makes the failure obvious */
	return buf + strlen(root);
}

struct case_ {
	const char *path;
	const char *expect; /* NULL: must fail with errno_expect */
	int errno_expect;
};

static const struct case_ cases[] = {
	{ "/", "", 0 },
	{ "..", "", 0 },
	{ "../../../etc", "/etc", 0 },
	{ "/a/b/../../../../etc", "/etc", 0 },
	{ "to_root", "", 0 },
	{ "to_root/a/b", "/a/b", 0 },
	{ "up", "", 0 },
	{ "up/etc", "/etc", 0 },
	{ "etc_abs", "/etc", 0 },
	{ "a/rel", "/etc", 0 },
	{ "a/b/abs", "/a", 0 },
	{ "a/b/abs/b/deep_up", "/etc", 0 },
	{ "a/escape", NULL, ENOENT },
	{ "loop", NULL, ELOOP },
	{ "file/x", NULL, ENOTDIR },
};

static void check_cases(int rootfd)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct launch_error err = { 0 };
		int fd = resolve_in_root(rootfd, cases[i].path, RESOLVE_EXISTING, &err);

		if (cases[i].expect) {
			CHECK(fd >= 0);
			if (fd >= 0)
				CHECK_STR(where(fd), cases[i].expect);
		} else {
			CHECK(fd < 0);
			if (fd >= 0)
				fprintf(stderr, "  %s resolved to %s\n", cases[i].path, where(fd));
			CHECK(err.errnum == cases[i].errno_expect);
		}
		if (fd >= 0)
			close(fd);
	}
}

static void resolve_cases(const void *walk)
{
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);

	resolve_force_walk(walk != NULL);
	CHECK(rootfd >= 0);
	check_cases(rootfd);
	resolve_force_walk(false);
	close(rootfd);
}

static bool exists(const char *dir, const char *rel, mode_t type)
{
	char path[PATH_MAX * 2];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

static void create_inside(const void *walk)
{
	struct launch_error err = { 0 };
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), fd;

	resolve_force_walk(walk != NULL);
	/* through a symlink to "/" and ".." above the root: still created inside */
	fd = resolve_in_root(rootfd, walk ? "to_root/w/x/../y" : "to_root/o/x/../y", RESOLVE_MKDIR, &err);
	CHECK(fd >= 0);
	CHECK(exists(root, walk ? "w/y" : "o/y", S_IFDIR));
	CHECK(!exists("/", walk ? "w" : "o", S_IFDIR) || !exists("/", walk ? "w/y" : "o/y", S_IFDIR));
	close(fd);
	fd = resolve_in_root(rootfd, walk ? "up/dev_w/null" : "up/dev_o/null", RESOLVE_MKFILE, &err);
	CHECK(fd >= 0);
	CHECK(exists(root, walk ? "dev_w/null" : "dev_o/null", S_IFREG));
	close(fd);
	/* a symlink pointing outside is neither followed out nor replaced */
	fd = resolve_in_root(rootfd, "a/escape", RESOLVE_MKFILE, &err);
	CHECK(fd < 0);
	CHECK(exists(root, "a/escape", S_IFLNK));
	CHECK(!exists(root, "secret", S_IFREG));
	if (fd >= 0)
		close(fd);
	resolve_force_walk(false);
	close(rootfd);
}

void test_resolve(void)
{
	make_tree();
	check_run("resolve: openat2 stays inside the root", resolve_cases, NULL);
	check_run("resolve: userspace walk stays inside the root", resolve_cases, "walk");
	check_run("resolve: openat2 creates missing mountpoints inside", create_inside, NULL);
	check_run("resolve: walk creates missing mountpoints inside", create_inside, "walk");
	sh("rm -rf %s", outside);
}
