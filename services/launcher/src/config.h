/* config.json (OCI runtime spec 1.0+) parsed into the fields honoured now. */
#ifndef SKIFF_CONFIG_H
#define SKIFF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "util.h"

struct json_object;

struct rlimit_cfg {
	int resource;
	struct rlimit limit;
};

struct mount_cfg {
	const char *destination;
	const char *type;        /* NULL for a bind mount without a type */
	const char *source;
	unsigned long flags;     /* MS_* flags to set */
	unsigned long propagation; /* MS_SHARED etc., applied in a second call */
	bool bind;               /* "bind"/"rbind" option or type "bind" */
	char *data;              /* filesystem options such as "mode=755,size=64k" */
};

struct config {
	struct json_object *doc; /* owns every borrowed string below */

	const char **args;       /* NULL-terminated */
	const char **env;        /* NULL-terminated */
	const char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *additional_gids;
	size_t n_additional_gids;
	bool no_new_privileges;
	struct rlimit_cfg *rlimits;
	size_t n_rlimits;

	const char *root_path;
	bool root_readonly;
	const char *hostname;    /* NULL when absent */

	struct mount_cfg *mounts;
	size_t n_mounts;

	unsigned long clone_flags;       /* CLONE_NEW* from linux.namespaces */
	unsigned long rootfs_propagation; /* MS_PRIVATE|MS_REC by default */
};

/* Parse a config document held in memory. On error, err->detail names the field. */
int config_parse(const char *json, struct config *cfg, struct launch_error *err);
/* Read and parse <bundle>/config.json. */
int config_load(const char *bundle, struct config *cfg, struct launch_error *err);
void config_free(struct config *cfg);

/* Look up a value of config env ("PATH" -> "/bin:..."), NULL when unset. */
const char *config_getenv(const struct config *cfg, const char *name);

#endif
