#define _GNU_SOURCE
#include "mounts.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "resolve.h"

/* Mounting through /proc/self/fd/N acts on exactly the inode we resolved
 * inside the root; re-walking the path string could be raced by symlinks. */
#define FD_PATH_LEN 32
static void fd_path(char buf[FD_PATH_LEN], int fd)
{
	snprintf(buf, FD_PATH_LEN, "/proc/self/fd/%d", fd);
}

/* Flags that a bind remount must repeat or it fails under a user namespace. */
static unsigned long locked_flags(const char *target)
{
	static const struct { unsigned long st, ms; } map[] = {
		{ ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV }, { ST_NOEXEC, MS_NOEXEC },
		{ ST_RDONLY, 0 }, /* ro is not locked: our caller decides */
	};
	struct statvfs sv;
	unsigned long out = 0;

	if (statvfs(target, &sv) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (sv.f_flag & map[i].st)
			out |= map[i].ms;
	return out;
}

int mount_remount(const char *target, const char *shown, unsigned long flags,
		  struct launch_error *err)
{
	flags |= locked_flags(target);
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
		return err_sys(err, "remount", shown);
	return 0;
}

/* Open a bind source on the host; relative sources belong to the bundle. */
static int open_bind_source(const struct mount_cfg *m, const char *bundle,
			    struct stat *st, struct launch_error *err)
{
	char path[PATH_MAX];
	int fd;

	if (m->source[0] == '/')
		snprintf(path, sizeof(path), "%s", m->source);
	else if (path_join(path, sizeof(path), bundle, m->source) < 0)
		return err_sys(err, "bind source", m->source);
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) < 0) {
		err_sys(err, "open bind source", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* A new mount hides the inode our fd points at; reopen to reach its top. */
static int reopen_top(int rootfd, const char *dest, char buf[FD_PATH_LEN],
		      struct launch_error *err)
{
	int fd = resolve_in_root(rootfd, dest, RESOLVE_EXISTING, err);

	if (fd >= 0)
		fd_path(buf, fd);
	return fd;
}

static int bind_mount(int rootfd, const struct mount_cfg *m, const char *bundle,
		      struct launch_error *err)
{
	_cleanup_fd_ int src = -1, dst = -1, top = -1;
	char srcp[FD_PATH_LEN], dstp[FD_PATH_LEN];
	unsigned long extra = m->flags & ~(unsigned long)(MS_REC | MS_BIND);
	struct stat st;

	src = open_bind_source(m, bundle, &st, err);
	if (src < 0)
		return -1;
	dst = resolve_in_root(rootfd, m->destination,
			      S_ISDIR(st.st_mode) ? RESOLVE_MKDIR : RESOLVE_MKFILE, err);
	if (dst < 0)
		return -1;
	fd_path(srcp, src);
	fd_path(dstp, dst);
	if (mount(srcp, dstp, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0)
		return err_sys(err, "bind mount onto", m->destination);
	/* MS_BIND ignores every other flag; ro etc. need a remount. */
	if (!extra)
		return 0;
	top = reopen_top(rootfd, m->destination, dstp, err);
	if (top < 0)
		return -1;
	return mount_remount(dstp, m->destination, extra, err);
}

static bool under(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	while (path[0] == '/' && path[1] == '/')
		path++;
	return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* Kernel filesystems, and anything at or below /proc, /sys and /dev, must
 * land on real directories of the image: a symlink there could aim proc or
 * sysfs at a path the image controls (runc CVE-2019-16884 class). */
static bool needs_real_path(const struct mount_cfg *m)
{
	static const char *const types[] = { "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2" };

	if (under(m->destination, "/proc") || under(m->destination, "/sys") ||
	    under(m->destination, "/dev"))
		return true;
	for (size_t i = 0; !m->bind && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(m->type, types[i]) == 0)
			return true;
	return false;
}

int mount_check_destination(int rootfd, const char *dest, struct launch_error *err)
{
	if (resolve_check_no_symlinks(rootfd, dest) < 0)
		return err_msg(err, "mount on", dest,
			       "the image has a symlink on this path; refused");
	return 0;
}

/* With a user namespace, a tmpfs belongs to the container's root, as it
 * would had it been mounted inside the namespace. */
static int fs_data(const struct config *cfg, const struct mount_cfg *m, char *buf, size_t len)
{
	int64_t uid = config_map_id(cfg->uid_maps, cfg->n_uid_maps, 0);
	int64_t gid = config_map_id(cfg->gid_maps, cfg->n_gid_maps, 0);
	const char *d = m->data ? m->data : "";

	if (strcmp(m->type, "tmpfs") != 0 || uid < 0 || gid < 0 || strstr(d, "uid=") || strstr(d, "gid="))
		return snprintf(buf, len, "%s", d) < (int)len ? 0 : -1;
	return snprintf(buf, len, "%s%suid=%lld,gid=%lld", d, *d ? "," : "", (long long)uid,
			(long long)gid) < (int)len ? 0 : -1;
}

/* proc and sysfs must really be what we mounted before anything is masked in them. */
static int verify_fs(int rootfd, const struct mount_cfg *m, struct launch_error *err)
{
	_cleanup_fd_ int top = -1;
	struct statfs sf;
	long want = strcmp(m->type, "proc") == 0 ? PROC_SUPER_MAGIC :
		    strcmp(m->type, "sysfs") == 0 ? SYSFS_MAGIC : 0;

	if (!want)
		return 0;
	top = resolve_in_root(rootfd, m->destination, RESOLVE_EXISTING, err);
	if (top < 0 || fstatfs(top, &sf) < 0)
		return top < 0 ? -1 : err_sys(err, "statfs", m->destination);
	if (sf.f_type != want)
		return err_msg(err, "mount on", m->destination, "is not %s after mounting it", m->type);
	return 0;
}

static int fs_mount(int rootfd, const struct config *cfg, const struct mount_cfg *m,
		    struct launch_error *err)
{
	_cleanup_fd_ int dst = -1;
	char dstp[FD_PATH_LEN], op[64], data[1024];
	const char *source = m->source && m->source[0] ? m->source : m->type;

	dst = resolve_in_root(rootfd, m->destination, RESOLVE_MKDIR, err);
	if (dst < 0)
		return -1;
	if (fs_data(cfg, m, data, sizeof(data)) < 0)
		return err_errno(err, E2BIG, "mount options of", m->destination);
	fd_path(dstp, dst);
	if (mount(source, dstp, m->type, m->flags, data[0] ? data : NULL) < 0) {
		snprintf(op, sizeof(op), "mount %s on", m->type);
		return err_sys(err, op, m->destination);
	}
	return verify_fs(rootfd, m, err);
}

/*
 * Default OCI devices, made by host root on the container's /dev tmpfs (a tmpfs mounted before
 * the user namespace exists, so its nodes work inside it). On a /dev mounted nodev, nodes would
 * not open: the host's are bound onto empty files instead.
 */
static int dev_node(int devfd, const char *name, dev_t dev, bool bind, struct launch_error *err)
{
	char dest[32], host[32], dstp[FD_PATH_LEN];
	_cleanup_fd_ int fd = -1;

	snprintf(dest, sizeof(dest), "/dev/%s", name);
	if (!bind) {
		if (mknodat(devfd, name, S_IFCHR | 0666, dev) < 0 || fchmodat(devfd, name, 0666, 0) < 0)
			return err_sys(err, "create device node", dest);
		return 0;
	}
	fd = openat(devfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd < 0)
		return err_sys(err, "create device node", dest);
	snprintf(host, sizeof(host), "/dev/%s", name);
	fd_path(dstp, fd);
	if (mount(host, dstp, NULL, MS_BIND, NULL) < 0)
		return err_sys(err, "bind device", dest);
	return 0;
}

static int dev_populate(int devfd, bool nodev, struct launch_error *err)
{
	static const struct { const char *name; unsigned major, minor; } devices[] = {
		{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 },
		{ "urandom", 1, 9 }, { "tty", 5, 0 },
	};
	static const char *const links[][2] = {
		{ "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
		{ "ptmx", "pts/ptmx" },
	};

	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
		if (dev_node(devfd, devices[i].name, makedev(devices[i].major, devices[i].minor), nodev, err) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlinkat(links[i][1], devfd, links[i][0]) < 0 && errno != EEXIST)
			return err_sys(err, "symlink /dev/", links[i][0]);
	return 0;
}

static bool is_cgroup_fs(const struct mount_cfg *m)
{
	return !m->bind && (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0);
}

/* Bind the host directory src onto dest inside the root, then apply the mount's flags. */
static int bind_onto(int rootfd, const char *src, const char *dest, unsigned long flags,
		     struct launch_error *err)
{
	_cleanup_fd_ int dst = -1, top = -1;
	char dstp[FD_PATH_LEN];

	dst = resolve_in_root(rootfd, dest, RESOLVE_MKDIR, err);
	if (dst < 0)
		return -1;
	fd_path(dstp, dst);
	if (mount(src, dstp, NULL, MS_BIND, NULL) < 0)
		return err_sys(err, "bind mount onto", dest);
	top = reopen_top(rootfd, dest, dstp, err);
	if (top < 0)
		return -1;
	return mount_remount(dstp, dest, flags, err);
}

/*
 * A cgroup filesystem in the container is its own cgroup and nothing above it (as runc does):
 * on v2 the container's cgroup directory bound at the destination; on v1 a tmpfs there with
 * the container's directory of each hierarchy it joined (all that are mounted, see run.c)
 * bound below it by name. The hybrid layout's empty v2 hierarchy is not shown. Whether or
 * not the container has a cgroup namespace, it sees no other cgroup.
 */
static int cgroup_mount(int rootfd, const struct mount_cfg *m, const struct cgroup *cg,
			struct launch_error *err)
{
	unsigned long flags = m->flags & ~(unsigned long)(MS_REC | MS_BIND);
	char src[PATH_MAX], dest[PATH_MAX];

	if (!cg || !cg->version)
		return err_msg(err, "mount cgroup on", m->destination, "the container has no cgroup");
	if (strcmp(m->type, "cgroup2") == 0 && cg->version != 2)
		return err_msg(err, "mount cgroup2 on", m->destination, "this host's cgroups are v1 (use type \"cgroup\")");
	if (cg->version == 2)
		return cgroup_dir(cg, 0, src) < 0 ? err_errno(err, ENAMETOOLONG, "mount cgroup on", m->destination)
						  : bind_onto(rootfd, src, m->destination, flags, err);
	{
		_cleanup_fd_ int dst = resolve_in_root(rootfd, m->destination, RESOLVE_MKDIR, err);
		char dstp[FD_PATH_LEN];

		if (dst < 0)
			return -1;
		fd_path(dstp, dst);
		if (mount("cgroup", dstp, "tmpfs", (flags & ~(unsigned long)MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=755") < 0)
			return err_sys(err, "mount tmpfs for cgroups on", m->destination);
	}
	for (int c = 0; c < CG_COUNT; c++) {
		if (!(cg->controllers & (1u << c)))
			continue;
		if (cgroup_dir(cg, (enum cg_controller)c, src) < 0 ||
		    snprintf(dest, sizeof(dest), "%s/%s", m->destination, cgroup_v1_name((enum cg_controller)c)) >= (int)sizeof(dest))
			return err_errno(err, ENAMETOOLONG, "mount cgroup on", m->destination);
		if (bind_onto(rootfd, src, dest, flags, err) < 0)
			return -1;
	}
	if (flags & MS_RDONLY) {
		_cleanup_fd_ int top = -1;
		char topp[FD_PATH_LEN];

		top = reopen_top(rootfd, m->destination, topp, err);
		if (top < 0)
			return -1;
		return mount_remount(topp, m->destination, MS_RDONLY, err);
	}
	return 0;
}

static bool is_dev_tmpfs(const struct mount_cfg *m)
{
	return !m->bind && strcmp(m->type, "tmpfs") == 0 &&
	       strcmp(m->destination, "/dev") == 0;
}

static int mount_one(int rootfd, const struct config *cfg, const struct mount_cfg *m,
		     const char *bundle, const struct cgroup *cg, struct launch_error *err)
{
	_cleanup_fd_ int top = -1;
	char topp[FD_PATH_LEN];
	int rc;

	if (needs_real_path(m) && mount_check_destination(rootfd, m->destination, err) < 0)
		return -1;
	if (m->bind)
		rc = bind_mount(rootfd, m, bundle, err);
	else if (is_cgroup_fs(m))
		rc = cgroup_mount(rootfd, m, cg, err);
	else
		rc = fs_mount(rootfd, cfg, m, err);
	if (rc < 0)
		return -1;
	if (!m->propagation && !is_dev_tmpfs(m))
		return 0;
	top = reopen_top(rootfd, m->destination, topp, err);
	if (top < 0)
		return -1;
	if (m->propagation && mount(NULL, topp, NULL, m->propagation, NULL) < 0)
		return err_sys(err, "set propagation of", m->destination);
	return is_dev_tmpfs(m) ? dev_populate(top, (m->flags & MS_NODEV) != 0, err) : 0;
}

int mounts_apply(int rootfd, const struct config *cfg, const char *bundle,
		 const struct cgroup *cg, struct launch_error *err)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		if (mount_one(rootfd, cfg, &cfg->mounts[i], bundle, cg, err) < 0)
			return -1;
	return 0;
}

/* The container's id for a device's owner, as a host id (through the user namespace maps). */
static int64_t host_id(const struct id_map *maps, size_t n, uint32_t id)
{
	return n ? config_map_id(maps, n, id) : (int64_t)id;
}

/*
 * linux.devices: made with mknod by host root before the user namespace exists, on the
 * container's /dev (which the image cannot redirect: no symlink on the path). A node already
 * there must be the very device asked for.
 */
static int device_create(int rootfd, const struct config *cfg, const struct device_cfg *d,
			 struct launch_error *err)
{
	char parent[PATH_MAX];
	const char *name = strrchr(d->path, '/') + 1;
	mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
	dev_t dev = d->type == 'p' ? 0 : makedev(d->major, d->minor);
	int64_t uid = host_id(cfg->uid_maps, cfg->n_uid_maps, d->uid);
	int64_t gid = host_id(cfg->gid_maps, cfg->n_gid_maps, d->gid);
	_cleanup_fd_ int dir = -1;
	struct stat st;

	snprintf(parent, sizeof(parent), "%.*s", (int)(name - d->path - 1), d->path);
	if (uid < 0 || gid < 0)
		return err_msg(err, "create device", d->path, "its uid or gid is not mapped by linux.uidMappings/gidMappings");
	if (mount_check_destination(rootfd, d->path, err) < 0)
		return -1;
	dir = resolve_in_root(rootfd, parent, RESOLVE_MKDIR, err);
	if (dir < 0)
		return -1;
	/* O_PATH directory fds work with the *at calls below */
	if (mknodat(dir, name, type | d->mode, dev) < 0) {
		if (errno != EEXIST)
			return err_sys(err, "create device", d->path);
		if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(err, "stat device", d->path);
		if ((st.st_mode & S_IFMT) != type || (d->type != 'p' && st.st_rdev != dev))
			return err_msg(err, "create device", d->path, "a different file is already there");
		return 0; /* the very device, left as it is: it may be one of the host's, bound here */
	}
	if (fchownat(dir, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(err, "chown device", d->path);
	if (fchmodat(dir, name, d->mode, 0) < 0) /* mknod applied the umask */
		return err_sys(err, "chmod device", d->path);
	return 0;
}

int mounts_devices(int rootfd, const struct config *cfg, struct launch_error *err)
{
	for (size_t i = 0; i < cfg->n_devices; i++)
		if (device_create(rootfd, cfg, &cfg->devices[i], err) < 0)
			return -1;
	return 0;
}

/* A masked directory gets an empty read-only tmpfs, a masked file the host's
 * /dev/null (opened by us, never the image's). Missing paths are skipped. */
static int mask_one(int rootfd, int devnull, const char *path, struct launch_error *err)
{
	_cleanup_fd_ int fd = -1;
	char dstp[FD_PATH_LEN], srcp[FD_PATH_LEN];
	struct stat st;

	if (mount_check_destination(rootfd, path, err) < 0)
		return -1;
	fd = resolve_in_root(rootfd, path, RESOLVE_EXISTING, err);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0)
		return err_sys(err, "stat masked path", path);
	fd_path(dstp, fd);
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", dstp, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=0") < 0)
			return err_sys(err, "mask", path);
		return 0;
	}
	fd_path(srcp, devnull);
	if (mount(srcp, dstp, NULL, MS_BIND, NULL) < 0)
		return err_sys(err, "mask", path);
	return 0;
}

static int readonly_one(int rootfd, const char *path, struct launch_error *err)
{
	_cleanup_fd_ int fd = -1, top = -1;
	char dstp[FD_PATH_LEN];

	if (mount_check_destination(rootfd, path, err) < 0)
		return -1;
	fd = resolve_in_root(rootfd, path, RESOLVE_EXISTING, err);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	fd_path(dstp, fd);
	if (mount(dstp, dstp, NULL, MS_BIND | MS_REC, NULL) < 0)
		return err_sys(err, "bind read-only path", path);
	top = reopen_top(rootfd, path, dstp, err);
	if (top < 0)
		return -1;
	return mount_remount(dstp, path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
}

int mounts_protect(int rootfd, const struct config *cfg, struct launch_error *err)
{
	_cleanup_fd_ int devnull = -1;

	if (cfg->masked_paths && cfg->masked_paths[0]) {
		struct stat st;
		devnull = open("/dev/null", O_PATH | O_CLOEXEC);
		if (devnull < 0 || fstat(devnull, &st) < 0)
			return err_sys(err, "open", "/dev/null");
		if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
			return err_msg(err, "open", "/dev/null", "the host's /dev/null is not the null device");
	}
	for (size_t i = 0; cfg->masked_paths && cfg->masked_paths[i]; i++)
		if (mask_one(rootfd, devnull, cfg->masked_paths[i], err) < 0)
			return -1;
	for (size_t i = 0; cfg->readonly_paths && cfg->readonly_paths[i]; i++)
		if (readonly_one(rootfd, cfg->readonly_paths[i], err) < 0)
			return -1;
	return 0;
}
