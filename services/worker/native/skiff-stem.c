/*
 * skiff-stem: the worker's privileged hand for stem cells (docs/decisions.md, "Node cold
 * starts: stem cells"). A stem cell is a node runtime container started before any function
 * is known; when a function adopts one, the parts of the container that name the function
 * are set from outside, by this program, before the function's code is loaded:
 *
 *   - its code: the function image's /function, bind-mounted read-only (nosuid, nodev) and
 *     private (no peer of the image's mount, nor of another function's) at the container's
 *     /function, from the image the worker prepared (never through a symlink, never from
 *     another mount);
 *   - its host name (UTS namespace);
 *   - the size of its private /tmp.
 *
 * The container's mount and UTS namespaces belong to the host user namespace (the launcher
 * makes them as host root before the container's own user namespace), so nothing inside the
 * container can undo these mounts; this program checks that they do before it joins them.
 * Its uid range, cgroup limits and environment are set by the worker itself (cgroup files, the
 * runtime protocol).
 *
 * One request per line on stdin, one answer per line on stdout; the worker keeps one such
 * process running, so an adoption costs no fork of the (large) worker:
 *
 *   adopt <TAB> pid <TAB> starttime <TAB> hostname <TAB> tmp-bytes <TAB> image-rootfs <LF>
 *   -> ok <LF>  |  error <TAB> message <LF>
 *
 * `pid` is the container's init (its PID 1) and `starttime` its start time in clock ticks
 * (field 22 of /proc/<pid>/stat) as the worker recorded it: a pid that was recycled since is
 * refused. So is a process in this program's own mount, UTS or user namespace, and one whose
 * mount or UTS namespace is owned by any user namespace but the host's, or whose root is not
 * its mount namespace's: only a container as skiff-launch makes it is ever changed. Each request runs in a child that joins the container's
 * namespaces, so this process's own never change. `tmp-bytes` 0 leaves /tmp as it is.
 *
 * Exit status: 0 at end of file on stdin, 2 on a malformed request (the worker broke the
 * protocol), 1 when stdout fails.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/mount.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LINE 8192
#define MAX_HOSTNAME 64

struct request {
	pid_t pid;
	unsigned long long starttime;
	char hostname[MAX_HOSTNAME + 1];
	unsigned long long tmp_bytes;
	const char *rootfs;
};

/* An error as a value: what failed, ready to send back as one line. */
struct error {
	char msg[512];
};

static int fail(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_errno(struct error *err, const char *what)
{
	return fail(err, "%s: %s", what, strerror(errno));
}

static void close_fdp(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_fd_ __attribute__((cleanup(close_fdp)))

/* ---- parsing ---- */

static int parse_ull(const char *s, unsigned long long *out)
{
	char *end;

	if (!*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* Letters, digits, '-' and '.', as a host name (RFC 1123), at most 64 bytes. */
static bool valid_hostname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_HOSTNAME || s[0] == '-' || s[0] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return false;
	return true;
}

/* Splits `line` (without its newline) into a request; the rootfs points into `line`. */
static int parse_request(char *line, struct request *req, struct error *err)
{
	char *fields[6];
	size_t n = 0;
	unsigned long long pid;

	fields[n++] = line;
	for (char *p = line; (p = strchr(p, '\t')); ) {
		if (n == 6)
			return fail(err, "a request has 6 tab-separated fields");
		*p++ = '\0';
		fields[n++] = p;
	}
	if (n != 6)
		return fail(err, "a request has 6 tab-separated fields");
	if (strcmp(fields[0], "adopt") != 0)
		return fail(err, "unknown request \"%.32s\"", fields[0]);
	if (parse_ull(fields[1], &pid) < 0 || pid < 2 || pid > INT32_MAX)
		return fail(err, "pid \"%.32s\" is not a process id above 1", fields[1]);
	req->pid = (pid_t)pid;
	if (parse_ull(fields[2], &req->starttime) < 0)
		return fail(err, "starttime \"%.32s\" is not a number", fields[2]);
	if (!valid_hostname(fields[3]))
		return fail(err, "hostname \"%.80s\" is not a host name", fields[3]);
	memcpy(req->hostname, fields[3], strlen(fields[3]) + 1);
	if (parse_ull(fields[4], &req->tmp_bytes) < 0)
		return fail(err, "tmp-bytes \"%.32s\" is not a number", fields[4]);
	if (fields[5][0] != '/')
		return fail(err, "image rootfs must be an absolute path");
	req->rootfs = fields[5];
	return 0;
}

/* ---- the container ---- */

/* Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), after the comm. */
static int read_starttime(pid_t pid, unsigned long long *out, struct error *err)
{
	char path[64], buf[1024];
	ssize_t n;
	_cleanup_fd_ int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(err, path);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return fail(err, "%s: cannot read", path);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return fail(err, "%s: no comm field", path);
	/* After ") ": field 3 (state) ... field 22 (starttime). */
	p++;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		char *end = p;
		while (*end && *end != ' ')
			end++;
		if (field == 22) {
			*end = '\0';
			return parse_ull(p, out) < 0 ? fail(err, "%s: starttime unreadable", path) : 0;
		}
		if (!*end)
			break;
		p = end;
	}
	return fail(err, "%s: too few fields", path);
}

/* Whether two open files are the same (for namespaces: the same namespace). */
static int same_file(int a, int b, bool *same, struct error *err)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return fail_errno(err, "fstat of a namespace");
	*same = sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	return 0;
}

static int open_ns(pid_t pid, const char *kind, struct error *err)
{
	char path[64];
	int fd;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, kind);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? fail_errno(err, path) : fd;
}

/*
 * The container's mount and UTS namespaces and its init's root directory (`fds[0..2]`), opened
 * from the process the worker meant and checked to be a container's as skiff-launch makes them:
 *   - its start time is the one the worker recorded, read after the namespaces were opened: the
 *     pid was not recycled (the stem cell held it from before the request until that read, so
 *     the namespaces opened meanwhile are its own);
 *   - none of its mount, UTS or user namespaces is this program's;
 *   - its mount and UTS namespaces are owned by this program's user namespace (the host's): the
 *     launcher made them as host root before the container's own user namespace, so nothing in
 *     the container can unmount or cover what is mounted there. A process that made namespaces
 *     of its own (owned by a user namespace it holds) could; it is refused.
 * The namespaces joined are these very ones, never looked up again.
 */
static int open_container(const struct request *req, int fds[3], struct error *err)
{
	static const char *const kinds[] = { "mnt", "uts", "user" };
	_cleanup_fd_ int self_user = open_ns(0, "user", err);
	_cleanup_fd_ int user = -1;
	unsigned long long starttime;
	bool same = true;

	if (self_user < 0)
		return -1;
	int *ns = fds;
	char root[64];

	snprintf(root, sizeof(root), "/proc/%d/root", (int)req->pid);
	if ((ns[0] = open_ns(req->pid, "mnt", err)) < 0 || (ns[1] = open_ns(req->pid, "uts", err)) < 0 ||
	    (user = open_ns(req->pid, "user", err)) < 0)
		return -1;
	if ((fds[2] = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return fail_errno(err, root);
	if (read_starttime(req->pid, &starttime, err) < 0)
		return -1;
	if (starttime != req->starttime)
		return fail(err, "process %d started at %llu, not %llu: not the stem cell", (int)req->pid, starttime, req->starttime);
	for (size_t i = 0; i < 3; i++) {
		_cleanup_fd_ int self = open_ns(0, kinds[i], err);
		if (self < 0 || same_file(i < 2 ? ns[i] : user, self, &same, err) < 0)
			return -1;
		if (same)
			return fail(err, "process %d shares this program's %s namespace: not a container", (int)req->pid, kinds[i]);
	}
	for (size_t i = 0; i < 2; i++) {
		_cleanup_fd_ int owner = ioctl(ns[i], NS_GET_USERNS);
		if (owner < 0)
			return fail_errno(err, "NS_GET_USERNS");
		if (same_file(owner, self_user, &same, err) < 0)
			return -1;
		if (!same)
			return fail(err, "process %d's %s namespace is owned by a user namespace of its own, not the host's: it could undo the mounts; refused", (int)req->pid, kinds[i]);
	}
	return 0;
}

/*
 * A detached read-only copy of <rootfs>/function: a directory on the image's own mount,
 * reached without following any symlink (an image could make /function a link to anywhere on
 * the host) and without crossing into another mount.
 */
static int clone_function_tree(const char *rootfs, struct error *err)
{
	_cleanup_fd_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_fd_ int dir = -1;
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	/*
	 * Private: a clone of a shared mount (as the image's is on a host whose / is shared, the
	 * systemd default) would be in its peer group, with every other function's clone of it.
	 */
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, .propagation = MS_PRIVATE };

	if (root < 0)
		return fail_errno(err, rootfs);
	dir = (int)syscall(SYS_openat2, root, "function", &how, sizeof(how));
	if (dir < 0)
		return fail(err, "%s/function: %s", rootfs, errno == ELOOP ? "a symlink; refused" : strerror(errno));
	int tree = (int)syscall(SYS_open_tree, dir, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		return fail_errno(err, "open_tree of the function's code");
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		close(tree);
		return fail_errno(err, "mount_setattr read-only, private");
	}
	return tree;
}

/*
 * Inside the container's mount namespace: its init's root (`proc_root`) is that namespace's
 * root, "/" here. A process that changed root (into a directory with a /function of its own)
 * would load its code from there, not from what is mounted here: refused.
 */
static int same_root(int proc_root, struct error *err)
{
	struct statx a, b;
	const unsigned mask = STATX_INO | STATX_MNT_ID;

	if (statx(proc_root, "", AT_EMPTY_PATH, mask, &a) < 0 || statx(AT_FDCWD, "/", 0, mask, &b) < 0)
		return fail_errno(err, "statx of the stem cell's root");
	if (a.stx_mnt_id != b.stx_mnt_id || a.stx_ino != b.stx_ino || a.stx_dev_major != b.stx_dev_major || a.stx_dev_minor != b.stx_dev_minor)
		return fail(err, "the stem cell's root is not its mount namespace's (it changed root); refused");
	return 0;
}

static int mount_id(int dirfd, const char *path, uint64_t *id, struct error *err)
{
	struct statx st;

	if (statx(dirfd, path, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &st) < 0)
		return fail_errno(err, "statx");
	if (!(st.stx_mask & STATX_MNT_ID))
		return fail(err, "statx: no mount id");
	*id = st.stx_mnt_id;
	return 0;
}

/*
 * Inside the container's namespaces: the tree at /function, a directory that is no symlink and
 * on the root's own mount (nothing mounted there yet: a stem cell is adopted once).
 */
static int attach_function_tree(int tree, struct error *err)
{
	_cleanup_fd_ int target = open("/function", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t root_id, target_id;

	if (target < 0)
		return fail_errno(err, "the stem cell's /function");
	if (mount_id(AT_FDCWD, "/", &root_id, err) < 0 || mount_id(target, "", &target_id, err) < 0)
		return -1;
	if (root_id != target_id)
		return fail(err, "the stem cell's /function is a mount point already: adopted before");
	if (syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return fail_errno(err, "move_mount at /function");
	return 0;
}

/* Sets the size of the tmpfs at /tmp, leaving its other options and mount flags as they are. */
static int resize_tmp(unsigned long long bytes, struct error *err)
{
	char size[32];
	_cleanup_fd_ int fs = (int)syscall(SYS_fspick, AT_FDCWD, "/tmp", FSPICK_CLOEXEC | FSPICK_NO_AUTOMOUNT | FSPICK_SYMLINK_NOFOLLOW);

	if (fs < 0)
		return fail_errno(err, "fspick /tmp");
	snprintf(size, sizeof(size), "%llu", bytes);
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", size, 0) < 0)
		return fail_errno(err, "fsconfig /tmp size");
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0) < 0)
		return fail_errno(err, "reconfigure /tmp");
	return 0;
}

static int adopt(const struct request *req, struct error *err)
{
	_cleanup_fd_ int mnt = -1;
	_cleanup_fd_ int uts = -1;
	_cleanup_fd_ int root = -1;
	_cleanup_fd_ int tree = -1;
	int fds[3] = { -1, -1, -1 };
	int rc = open_container(req, fds, err);

	mnt = fds[0];
	uts = fds[1];
	root = fds[2];
	if (rc < 0)
		return -1;
	/* Opened on the host, before joining the container: its path means nothing in there. */
	tree = clone_function_tree(req->rootfs, err);
	if (tree < 0)
		return -1;
	if (setns(mnt, CLONE_NEWNS) < 0 || setns(uts, CLONE_NEWUTS) < 0)
		return fail_errno(err, "setns into the stem cell");
	if (same_root(root, err) < 0 || attach_function_tree(tree, err) < 0)
		return -1;
	if (sethostname(req->hostname, strlen(req->hostname)) < 0)
		return fail_errno(err, "sethostname");
	if (req->tmp_bytes && resize_tmp(req->tmp_bytes, err) < 0)
		return -1;
	return 0;
}

/* Runs one adoption in a child (which alone joins the container) and reports its outcome. */
static int run_in_child(const struct request *req, struct error *err)
{
	int pipefd[2];
	pid_t child;
	int status;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fail_errno(err, "pipe");
	child = fork();
	if (child < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return fail_errno(err, "fork");
	}
	if (child == 0) {
		struct error e = { "" };
		close(pipefd[0]);
		if (adopt(req, &e) < 0) {
			(void)!write(pipefd[1], e.msg, strlen(e.msg));
			_exit(1);
		}
		_exit(0);
	}
	close(pipefd[1]);
	do
		n = read(pipefd[0], err->msg, sizeof(err->msg) - 1);
	while (n < 0 && errno == EINTR);
	err->msg[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return fail_errno(err, "waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (!err->msg[0])
		fail(err, "the adopting process ended with status %d", status);
	return -1;
}

static int answer(const char *status, const char *msg)
{
	if (msg)
		printf("%s\t%s\n", status, msg);
	else
		printf("%s\n", status);
	return fflush(stdout) == 0 ? 0 : -1;
}

int main(void)
{
	static char line[MAX_LINE];

	signal(SIGPIPE, SIG_IGN);
	while (fgets(line, sizeof(line), stdin)) {
		size_t len = strlen(line);
		struct request req;
		struct error err = { "" };

		if (len == 0 || line[len - 1] != '\n') {
			fprintf(stderr, "skiff-stem: a request longer than %d bytes or without its newline\n", MAX_LINE - 1);
			return 2;
		}
		line[len - 1] = '\0';
		if (parse_request(line, &req, &err) < 0) {
			fprintf(stderr, "skiff-stem: %s\n", err.msg);
			return 2;
		}
		int rc = run_in_child(&req, &err) < 0 ? answer("error", err.msg) : answer("ok", NULL);
		if (rc < 0)
			return 1;
	}
	return 0;
}
