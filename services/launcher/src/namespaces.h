/* Namespace types, and the pieces of namespace setup done by the container init. */
#ifndef SKIFF_NAMESPACES_H
#define SKIFF_NAMESPACES_H

#include "util.h"

struct ns_type {
	const char *name;     /* OCI linux.namespaces[].type */
	unsigned long flag;   /* CLONE_NEW* */
	bool supported;       /* false: recognised but rejected for now */
};

/* NULL when the name is not an OCI namespace type. */
const struct ns_type *ns_lookup(const char *name);

/* Bring the loopback interface of a fresh network namespace up. */
int ns_loopback_up(struct launch_error *err);

struct config;
/* Write linux.sysctl through the host's /proc/sys (before pivot_root): the
 * values land in the init's own namespaces, and the image cannot redirect
 * the writes with symlinks. */
int sysctls_apply(const struct config *cfg, struct launch_error *err);

#endif
