/* config.json (OCI runtime spec 1.0+) parsed into the fields honoured now. */
#ifndef SKIFF_CONFIG_H
#define SKIFF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

/* linux.uidMappings / gidMappings entry. */
struct id_map {
	uint32_t container_id, host_id, size;
};
#define MAX_ID_MAPS 5 /* the kernel's limit without extended maps is 340; 5 is plenty */

/* A namespace joined by path instead of created. */
struct ns_join {
	unsigned long flag; /* CLONE_NEW* */
	const char *path;
};
#define MAX_NS_JOINS 8

/* linux.resources.devices entry: one device cgroup rule. */
struct device_rule {
	bool allow;
	char type;               /* 'a', 'c' or 'b' */
	int64_t major, minor;    /* -1 = any */
	char access[4];          /* some of "rwm" */
};
#define MAX_DEVICE_RULES 256

/* linux.resources, only the fields honoured. has_* says "present". */
struct resources {
	bool has_memory, has_swap, has_shares, has_quota, has_period, has_pids;
	bool has_reservation, has_swappiness, has_kernel_tcp, disable_oom_killer;
	int64_t memory_limit;   /* bytes, -1 = unlimited */
	int64_t memory_swap;    /* memory+swap bytes (OCI), -1 = unlimited */
	int64_t memory_reservation; /* soft limit, bytes, -1 = unlimited */
	uint64_t swappiness;    /* 0..100 */
	int64_t kernel_tcp;     /* bytes, -1 = unlimited (v1 only) */
	uint64_t cpu_shares;
	int64_t cpu_quota;      /* microseconds per period, -1 = unlimited */
	uint64_t cpu_period;    /* microseconds */
	const char *cpus, *mems; /* cpuset lists, NULL when absent */
	int64_t pids_limit;     /* 0 or -1 = unlimited */
	struct device_rule *devices; /* linux.resources.devices then the defaults, NULL when absent */
	size_t n_devices;
};

/* linux.devices entry: a node made in the container's /dev. */
struct device_cfg {
	const char *path;
	char type;               /* 'c', 'b', 'u' (unbuffered char) or 'p' (FIFO) */
	uint32_t major, minor;
	mode_t mode;             /* permission bits; 0666 when absent */
	uid_t uid;
	gid_t gid;
};

/* A hook: run with the container state on stdin. */
struct hook_cfg {
	const char *path;
	const char **args;       /* NULL-terminated; NULL when absent (argv is then just path) */
	const char **env;        /* NULL-terminated */
	int timeout;             /* seconds, 0 = none */
};

enum hook_kind { HOOK_PRESTART, HOOK_CREATE_RUNTIME, HOOK_CREATE_CONTAINER,
		 HOOK_START_CONTAINER, HOOK_POSTSTART, HOOK_POSTSTOP, HOOK_KIND_COUNT };

struct hook_list {
	struct hook_cfg *hooks;
	size_t n;
};

/* The five capability sets as bit masks (bit N = capability N). */
enum cap_set { CAP_SET_BOUNDING, CAP_SET_EFFECTIVE, CAP_SET_INHERITABLE,
	       CAP_SET_PERMITTED, CAP_SET_AMBIENT, CAP_SET_COUNT };

struct sysctl_cfg {
	const char *key, *value;
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
	bool has_umask;
	mode_t umask;
	struct rlimit_cfg *rlimits;
	size_t n_rlimits;

	const char *root_path;
	bool root_readonly;
	const char *hostname;    /* NULL when absent */
	const char *domainname;  /* NULL when absent */
	struct json_object *annotations; /* NULL when absent */
	struct hook_list hooks[HOOK_KIND_COUNT];

	struct mount_cfg *mounts;
	size_t n_mounts;

	unsigned long clone_flags;       /* CLONE_NEW* to create (not joined ones) */
	unsigned long rootfs_propagation; /* MS_PRIVATE|MS_REC by default */

	uint64_t caps[CAP_SET_COUNT];    /* absent sets are empty: no capabilities */
	uint64_t ambient_dropped;        /* listed as ambient but not permitted and inheritable */
	bool has_oom_score_adj;
	int oom_score_adj;

	struct ns_join joins[MAX_NS_JOINS];
	size_t n_joins;
	struct id_map uid_maps[MAX_ID_MAPS], gid_maps[MAX_ID_MAPS];
	size_t n_uid_maps, n_gid_maps;

	const char *cgroups_path;        /* NULL when absent */
	bool has_resources;
	struct resources res;

	struct json_object *seccomp;     /* linux.seccomp, NULL when absent */
	const char **masked_paths;       /* NULL-terminated */
	const char **readonly_paths;     /* NULL-terminated */
	struct sysctl_cfg *sysctls;
	size_t n_sysctls;
	struct device_cfg *devices;      /* linux.devices */
	size_t n_devices;
	bool has_personality;
	unsigned long personality;       /* personality(2) persona */
};

#define CONFIG_MAX_SIZE (4 << 20) /* bytes of config.json */

/* Parse a config document held in memory. On error, err->detail names the field. */
int config_parse(const char *json, struct config *cfg, struct launch_error *err);
/* Read <bundle>/config.json (at most CONFIG_MAX_SIZE bytes) into *json, to be freed. */
int config_read(const char *bundle, char **json, struct launch_error *err);
/* Read and parse <bundle>/config.json. */
int config_load(const char *bundle, struct config *cfg, struct launch_error *err);
void config_free(struct config *cfg);

/* One hooks.<kind> array (strings borrowed from arr, which must outlive the list). */
int config_hook_list(struct json_object *arr, enum hook_kind kind, struct hook_list *list,
		     struct launch_error *err);
void config_hook_list_free(struct hook_list *list);
/* The hooks run after create (poststart, poststop) as a JSON object {"poststart": [...], ...},
 * malloc'd; NULL when there are none. */
char *config_late_hooks_json(const struct config *cfg);

/* "prestart", "createRuntime", ... */
const char *config_hook_name(enum hook_kind kind);

/* A mount of type cgroup or cgroup2: the container sees its own cgroup (see mounts.c). */
bool config_mounts_cgroup(const struct config *cfg);

/* Look up a value of config env ("PATH" -> "/bin:..."), NULL when unset. */
const char *config_getenv(const struct config *cfg, const char *name);

/* Host id that container id `id` maps to, or -1 when unmapped. */
int64_t config_map_id(const struct id_map *maps, size_t n, uint32_t id);

#endif
