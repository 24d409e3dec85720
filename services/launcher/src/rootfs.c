#define _GNU_SOURCE
#include "rootfs.h"

#include <fcntl.h>
#include <sys/mount.h>
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

int rootfs_setup(const struct config *cfg, const char *root, const char *bundle,
		 struct launch_error *err)
{
	_cleanup_fd_ int rootfd = -1;

	if (isolate_propagation(cfg, err) < 0)
		return -1;
	/* pivot_root needs the new root to be a mount point. */
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return err_sys(err, "bind mount root", root);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_sys(err, "open root", root);
	if (mounts_apply(rootfd, cfg, bundle, err) < 0 || mounts_protect(rootfd, cfg, err) < 0 ||
	    pivot(rootfd, err) < 0)
		return -1;
	return finish_root(cfg, err);
}
