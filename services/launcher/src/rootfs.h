/* Building the container's mount tree and switching into it. */
#ifndef SKIFF_ROOTFS_H
#define SKIFF_ROOTFS_H

#include "config.h"

/* Runs in the container init, inside its new mount namespace. root is the
 * absolute host path of root.path. On success "/" is the container root. */
int rootfs_setup(const struct config *cfg, const char *root, const char *bundle,
		 struct launch_error *err);

#endif
