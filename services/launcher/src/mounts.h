/* config.json "mounts", applied in order below a not yet pivoted root. */
#ifndef SKIFF_MOUNTS_H
#define SKIFF_MOUNTS_H

#include "config.h"

/* rootfd: O_PATH fd of the bind-mounted container root. Relative bind
 * sources are taken from bundle. */
struct cgroup;
/* cg: the container's cgroup, for cgroup mounts (NULL when it has none). */
int mounts_apply(int rootfd, const struct config *cfg, const char *bundle,
		 const struct cgroup *cg, struct launch_error *err);

/* linux.devices, made in the not yet pivoted root. */
int mounts_devices(int rootfd, const struct config *cfg, struct launch_error *err);

/* maskedPaths and readonlyPaths, below the not yet pivoted root. */
int mounts_protect(int rootfd, const struct config *cfg, struct launch_error *err);

/* Refuse a destination that has a symlink on its path inside the root. */
int mount_check_destination(int rootfd, const char *dest, struct launch_error *err);

/* Remount an existing mount point with flags, keeping the flags the kernel
 * would refuse to clear (nosuid/nodev/noexec locked by a user namespace).
 * shown is the path named in errors. */
int mount_remount(const char *target, const char *shown, unsigned long flags,
		  struct launch_error *err);

#endif
