#define _GNU_SOURCE
#include "rootfs.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mounts.h"

/* Cut propagation to the host before touching anything: rslave when the
 * config asks for slave/shared (so host mounts still arrive), else rprivate. */
static int isolate_propagation(const struct config *cfg, struct launch_error *err)
{
	unsigned long mode = cfg->rootfs_propagation & (MS_SLAVE | MS_SHARED)
				     ? MS_SLAVE : MS_PRIVATE;

	if (mount(NULL, "/", NULL, MS_REC | mode, NULL) < 0)
		return err_sys(err, "make / private", NULL);
	return 0;
}

/* pivot_root(".", ".") stacks the old root on top of the new one; detaching
 * "." then drops it without needing a directory for it inside the rootfs. */
static int pivot(int rootfd, struct launch_error *err)
{
	if (fchdir(rootfd) < 0)
		return err_sys(err, "chdir to", "container root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return err_sys(err, "pivot_root", "container root");
	if (umount2(".", MNT_DETACH) < 0)
		return err_sys(err, "detach old root", NULL);
	if (chdir("/") < 0)
		return err_sys(err, "chdir", "/");
	return 0;
}

static int finish_root(const struct config *cfg, struct launch_error *err)
{
	/* shared/unbindable (modes not set up front) can be applied only now */
	if ((cfg->rootfs_propagation & (MS_SHARED | MS_UNBINDABLE)) &&
	    mount(NULL, "/", NULL, cfg->rootfs_propagation, NULL) < 0)
		return err_sys(err, "set propagation of", "/");
	if (cfg->root_readonly)
		return mount_remount("/", "/", MS_RDONLY, err);
	return 0;
}

/*
 * No mount namespace of its own: the container's mounts are the launcher's, as the spec says.
 * They go below a bind mount of the root made private at once, so that none of them propagates
 * back to the host's mounts, and the launcher detaches that one mount with the container (see
 * run.c). The root switch is then a chroot: pivot_root would move the root of every process
 * in the namespace.
 */
static int enter_chroot(int rootfd, struct launch_error *err)
{
	if (fchdir(rootfd) < 0)
		return err_sys(err, "chdir to", "container root");
	if (chroot(".") < 0)
		return err_sys(err, "chroot", "container root");
	if (chdir("/") < 0)
		return err_sys(err, "chdir", "/");
	return 0;
}

int rootfs_prepare(const struct config *cfg, const char *root, const char *bundle,
		   const struct cgroup *cg, bool own_mount_ns, struct launch_error *err)
{
	_cleanup_fd_ int rootfd = -1;

	if (own_mount_ns && isolate_propagation(cfg, err) < 0)
		return -1;
	/* pivot_root needs the new root to be a mount point; the launcher's cleanup needs one too. */
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return err_sys(err, "bind mount root", root);
	if (!own_mount_ns && mount(NULL, root, NULL, MS_PRIVATE | MS_REC, NULL) < 0)
		return err_sys(err, "make private", root);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_sys(err, "open root", root);
	if (mounts_apply(rootfd, cfg, bundle, cg, err) < 0 || mounts_devices(rootfd, cfg, err) < 0 ||
	    mounts_protect(rootfd, cfg, err) < 0)
		return -1;
	return take_fd(&rootfd);
}

int rootfs_enter(const struct config *cfg, int rootfd, bool own_mount_ns, struct launch_error *err)
{
	if ((own_mount_ns ? pivot(rootfd, err) : enter_chroot(rootfd, err)) < 0)
		return -1;
	return finish_root(cfg, err);
}

static uint64_t mount_id(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
		return 0;
	return stx.stx_mnt_id;
}

void root_mount_before(struct root_mount *rm, const struct config *cfg, const char *root)
{
	memset(rm, 0, sizeof(*rm));
	if (cfg->clone_flags & CLONE_NEWNS)
		return;
	for (size_t i = 0; i < cfg->n_joins; i++)
		if (cfg->joins[i].flag == CLONE_NEWNS)
			return;
	snprintf(rm->path, sizeof(rm->path), "%s", root);
	rm->before = mount_id(root);
	rm->watching = true;
}

void root_mount_after(struct root_mount *rm)
{
	uint64_t now;

	if (!rm->watching || rm->id)
		return;
	now = mount_id(rm->path);
	if (now && now != rm->before)
		rm->id = now;
}

void root_mount_release(struct root_mount *rm)
{
	if (rm->id && mount_id(rm->path) == rm->id)
		(void)umount2(rm->path, MNT_DETACH);
	rm->id = 0;
}
