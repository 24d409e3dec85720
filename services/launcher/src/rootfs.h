/* Building the container's mount tree and switching into it. */
#ifndef SKIFF_ROOTFS_H
#define SKIFF_ROOTFS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct cgroup;
/* In the container init, in the container's mount namespace (own_mount_ns: new or joined;
 * otherwise the launcher's): the mounts, devices, masked and read-only paths below root (the
 * absolute host path of root.path; cg: the container's cgroup, NULL when none). Returns an
 * O_PATH fd of the root, still a directory of the host's tree. */
int rootfs_prepare(const struct config *cfg, const char *root, const char *bundle,
		   const struct cgroup *cg, bool own_mount_ns, struct launch_error *err);
/* Then the switch: "/" is the container root (rootfd is closed by the caller). */
int rootfs_enter(const struct config *cfg, int rootfd, bool own_mount_ns, struct launch_error *err);

/*
 * A container without a mount namespace of its own leaves its mounts in the launcher's, below
 * one bind mount of its root; the launcher detaches that mount with the container. Only the
 * very mount the container made is detached (its mount ID, taken after the init's setup).
 */
struct root_mount {
	char path[PATH_MAX];
	uint64_t before;         /* mount ID at path before the init ran */
	uint64_t id;             /* the container's bind mount, 0 when there is none to detach */
	bool watching;
};

/* Before the clone: note what is mounted at root when the config has no mount namespace. */
void root_mount_before(struct root_mount *rm, const struct config *cfg, const char *root);
/* After the init's setup: the container's mount, if it made one. */
void root_mount_after(struct root_mount *rm);
/* Detach the container's mount (and all below it), if it is still there. */
void root_mount_release(struct root_mount *rm);

#endif
