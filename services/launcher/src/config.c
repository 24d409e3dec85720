/* Parse config.json. Strings are borrowed from the json-c document, which
 * the config keeps alive; only the arrays the launcher needs are allocated. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps.h"
#include "namespaces.h"

/* Every config error reads "config.json: <field>: <problem>". */
#define bad(err, ...) err_msg(err, "config.json", NULL, __VA_ARGS__)

static struct json_object *member(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	if (obj && json_object_object_get_ex(obj, key, &v) && !json_object_is_type(v, json_type_null))
		return v;
	return NULL;
}

/* An optional object member; absent is fine, another type is an error. */
static int get_object(struct json_object *obj, const char *key, const char *field,
		      struct json_object **out, struct launch_error *err)
{
	*out = member(obj, key);
	if (*out && !json_object_is_type(*out, json_type_object))
		return bad(err, "%s: must be an object", field);
	return 0;
}

static int get_string(struct json_object *obj, const char *key, const char *field,
		      const char **out, struct launch_error *err)
{
	struct json_object *v = member(obj, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return bad(err, "%s: must be a string", field);
	*out = json_object_get_string(v);
	return 0;
}

static int get_bool(struct json_object *obj, const char *key, const char *field,
		    bool *out, struct launch_error *err)
{
	struct json_object *v = member(obj, key);

	*out = false;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return bad(err, "%s: must be a boolean", field);
	*out = json_object_get_boolean(v);
	return 0;
}

/* Accepts 0..max; json-c stores integers as int64 or uint64. */
static int json_to_u64(struct json_object *v, uint64_t max, uint64_t *out)
{
	if (!v || !json_object_is_type(v, json_type_int))
		return -1;
	if (json_object_get_int64(v) < 0)
		return -1;
	*out = json_object_get_uint64(v);
	return *out <= max ? 0 : -1;
}

static int get_id(struct json_object *obj, const char *key, const char *field,
		  uint32_t *out, struct launch_error *err)
{
	struct json_object *v = member(obj, key);
	uint64_t n = 0;

	*out = 0;
	if (v && json_to_u64(v, UINT32_MAX - 1, &n) < 0)
		return bad(err, "%s: must be an integer from 0 to 4294967294", field);
	*out = (uint32_t)n;
	return 0;
}

/* Copy an array of strings into a NULL-terminated vector. */
static int get_string_array(struct json_object *arr, const char *field, bool nonempty,
			    const char ***out, struct launch_error *err)
{
	size_t n;

	*out = NULL;
	if (arr && !json_object_is_type(arr, json_type_array))
		return bad(err, "%s: must be %s array of strings", field,
			   nonempty ? "a non-empty" : "an");
	n = arr ? json_object_array_length(arr) : 0;
	if (nonempty && n == 0)
		return bad(err, "%s: must be a non-empty array of strings", field);
	*out = calloc(n + 1, sizeof(char *));
	if (!*out)
		return err_sys(err, "allocate", field);
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(s, json_type_string))
			return bad(err, "%s[%zu]: must be a string", field, i);
		(*out)[i] = json_object_get_string(s);
	}
	return 0;
}

static int parse_user(struct json_object *user, struct config *cfg, struct launch_error *err)
{
	struct json_object *gids = member(user, "additionalGids");
	size_t n;

	if (get_id(user, "uid", "process.user.uid", &cfg->uid, err) < 0 ||
	    get_id(user, "gid", "process.user.gid", &cfg->gid, err) < 0)
		return -1;
	if (!gids)
		return 0;
	if (!json_object_is_type(gids, json_type_array))
		return bad(err, "process.user.additionalGids: must be an array of integers");
	n = json_object_array_length(gids);
	cfg->additional_gids = calloc(n + 1, sizeof(gid_t));
	if (!cfg->additional_gids)
		return err_sys(err, "allocate", "process.user.additionalGids");
	for (size_t i = 0; i < n; i++) {
		uint64_t g;
		if (json_to_u64(json_object_array_get_idx(gids, i), UINT32_MAX - 1, &g) < 0)
			return bad(err, "process.user.additionalGids[%zu]: must be an integer from 0 to 4294967294", i);
		cfg->additional_gids[i] = (gid_t)g;
	}
	cfg->n_additional_gids = n;
	return 0;
}

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "RLIMIT_AS", RLIMIT_AS }, { "RLIMIT_CORE", RLIMIT_CORE },
	{ "RLIMIT_CPU", RLIMIT_CPU }, { "RLIMIT_DATA", RLIMIT_DATA },
	{ "RLIMIT_FSIZE", RLIMIT_FSIZE }, { "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "RLIMIT_NICE", RLIMIT_NICE }, { "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_NPROC", RLIMIT_NPROC }, { "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO }, { "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING }, { "RLIMIT_STACK", RLIMIT_STACK },
};

static int rlimit_resource(const char *name)
{
	for (size_t i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++)
		if (strcmp(rlimit_names[i].name, name) == 0)
			return rlimit_names[i].resource;
	return -1;
}

static int parse_rlimit(struct json_object *o, size_t i, struct rlimit_cfg *out,
			struct launch_error *err)
{
	struct json_object *type = member(o, "type");
	uint64_t hard, soft;

	if (!json_object_is_type(o, json_type_object))
		return bad(err, "process.rlimits[%zu]: must be an object", i);
	if (!type || !json_object_is_type(type, json_type_string) ||
	    (out->resource = rlimit_resource(json_object_get_string(type))) < 0)
		return bad(err, "process.rlimits[%zu].type: must be a known RLIMIT_* name", i);
	if (json_to_u64(member(o, "hard"), UINT64_MAX, &hard) < 0 ||
	    json_to_u64(member(o, "soft"), UINT64_MAX, &soft) < 0)
		return bad(err, "process.rlimits[%zu]: soft and hard must be non-negative integers", i);
	if (soft > hard)
		return bad(err, "process.rlimits[%zu]: soft exceeds hard", i);
	out->limit.rlim_cur = soft;
	out->limit.rlim_max = hard;
	return 0;
}

static int parse_rlimits(struct json_object *arr, struct config *cfg, struct launch_error *err)
{
	size_t n;

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "process.rlimits: must be an array");
	n = json_object_array_length(arr);
	cfg->rlimits = calloc(n + 1, sizeof(*cfg->rlimits));
	if (!cfg->rlimits)
		return err_sys(err, "allocate", "process.rlimits");
	for (size_t i = 0; i < n; i++)
		if (parse_rlimit(json_object_array_get_idx(arr, i), i, &cfg->rlimits[i], err) < 0)
			return -1;
	cfg->n_rlimits = n;
	return 0;
}

static int parse_cap_set(struct json_object *caps, const char *set, uint64_t *out,
			 struct launch_error *err)
{
	struct json_object *arr = member(caps, set);

	*out = 0;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "process.capabilities.%s: must be an array of strings", set);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);
		int c = json_object_is_type(s, json_type_string) ? cap_from_name(json_object_get_string(s)) : -2;
		if (c == -2)
			return bad(err, "process.capabilities.%s[%zu]: must be a string", set, i);
		if (c < 0)
			return bad(err, "process.capabilities.%s[%zu]: unknown capability \"%s\"", set, i,
				   json_object_get_string(s));
		*out |= 1ULL << c;
	}
	return 0;
}

/* Absent sets (or an absent object) mean no capabilities at all. */
static int parse_capabilities(struct json_object *proc, struct config *cfg, struct launch_error *err)
{
	static const char *const sets[CAP_SET_COUNT] = { "bounding", "effective", "inheritable",
							  "permitted", "ambient" };
	struct json_object *caps;

	if (get_object(proc, "capabilities", "process.capabilities", &caps, err) < 0)
		return -1;
	uint64_t stray;

	for (int i = 0; i < CAP_SET_COUNT; i++)
		if (parse_cap_set(caps, sets[i], &cfg->caps[i], err) < 0)
			return -1;
	/* the kernel raises an ambient capability only if it is permitted and inheritable */
	stray = cfg->caps[CAP_SET_AMBIENT] & ~(cfg->caps[CAP_SET_PERMITTED] & cfg->caps[CAP_SET_INHERITABLE]);
	if (stray)
		return bad(err, "process.capabilities.ambient: %s must also be in permitted and inheritable",
			   cap_name(__builtin_ctzll(stray)));
	return 0;
}

static int parse_oom_score_adj(struct json_object *proc, struct config *cfg, struct launch_error *err)
{
	struct json_object *v = member(proc, "oomScoreAdj");

	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < -1000 ||
	    json_object_get_int64(v) > 1000)
		return bad(err, "process.oomScoreAdj: must be an integer from -1000 to 1000");
	cfg->has_oom_score_adj = true;
	cfg->oom_score_adj = (int)json_object_get_int64(v);
	return 0;
}

static int parse_process(struct json_object *doc, struct config *cfg, struct launch_error *err)
{
	struct json_object *proc, *user;
	bool terminal;

	if (get_object(doc, "process", "process", &proc, err) < 0)
		return -1;
	if (!proc)
		return bad(err, "process: required");
	if (get_string_array(member(proc, "args"), "process.args", true, &cfg->args, err) < 0 ||
	    get_string_array(member(proc, "env"), "process.env", false, &cfg->env, err) < 0 ||
	    get_string(proc, "cwd", "process.cwd", &cfg->cwd, err) < 0 ||
	    get_bool(proc, "noNewPrivileges", "process.noNewPrivileges", &cfg->no_new_privileges, err) < 0 ||
	    get_bool(proc, "terminal", "process.terminal", &terminal, err) < 0 ||
	    get_object(proc, "user", "process.user", &user, err) < 0 ||
	    parse_user(user, cfg, err) < 0 ||
	    parse_rlimits(member(proc, "rlimits"), cfg, err) < 0 ||
	    parse_capabilities(proc, cfg, err) < 0 || parse_oom_score_adj(proc, cfg, err) < 0)
		return -1;
	if (terminal)
		return bad(err, "process.terminal: a terminal is not supported yet");
	if (!cfg->cwd || !cfg->cwd[0])
		cfg->cwd = "/";
	if (cfg->cwd[0] != '/')
		return bad(err, "process.cwd: must be an absolute path");
	return 0;
}

static int parse_root(struct json_object *doc, struct config *cfg, struct launch_error *err)
{
	struct json_object *root;

	if (get_object(doc, "root", "root", &root, err) < 0 ||
	    get_string(root, "path", "root.path", &cfg->root_path, err) < 0 ||
	    get_bool(root, "readonly", "root.readonly", &cfg->root_readonly, err) < 0)
		return -1;
	if (!cfg->root_path || !cfg->root_path[0])
		return bad(err, "root.path: required");
	return 0;
}

/* ---- mount options ---- */

enum opt_kind { OPT_SET, OPT_CLEAR, OPT_PROPAGATION, OPT_BIND };

static const struct {
	const char *name;
	enum opt_kind kind;
	unsigned long flag;
} mount_opts[] = {
	{ "defaults", OPT_SET, 0 },
	{ "ro", OPT_SET, MS_RDONLY }, { "rw", OPT_CLEAR, MS_RDONLY },
	{ "nosuid", OPT_SET, MS_NOSUID }, { "suid", OPT_CLEAR, MS_NOSUID },
	{ "nodev", OPT_SET, MS_NODEV }, { "dev", OPT_CLEAR, MS_NODEV },
	{ "noexec", OPT_SET, MS_NOEXEC }, { "exec", OPT_CLEAR, MS_NOEXEC },
	{ "sync", OPT_SET, MS_SYNCHRONOUS }, { "async", OPT_CLEAR, MS_SYNCHRONOUS },
	{ "dirsync", OPT_SET, MS_DIRSYNC },
	{ "mand", OPT_SET, MS_MANDLOCK }, { "nomand", OPT_CLEAR, MS_MANDLOCK },
	{ "noatime", OPT_SET, MS_NOATIME }, { "atime", OPT_CLEAR, MS_NOATIME },
	{ "nodiratime", OPT_SET, MS_NODIRATIME }, { "diratime", OPT_CLEAR, MS_NODIRATIME },
	{ "relatime", OPT_SET, MS_RELATIME }, { "norelatime", OPT_CLEAR, MS_RELATIME },
	{ "strictatime", OPT_SET, MS_STRICTATIME }, { "nostrictatime", OPT_CLEAR, MS_STRICTATIME },
	{ "bind", OPT_BIND, 0 }, { "rbind", OPT_BIND, MS_REC },
	{ "private", OPT_PROPAGATION, MS_PRIVATE },
	{ "rprivate", OPT_PROPAGATION, MS_PRIVATE | MS_REC },
	{ "shared", OPT_PROPAGATION, MS_SHARED },
	{ "rshared", OPT_PROPAGATION, MS_SHARED | MS_REC },
	{ "slave", OPT_PROPAGATION, MS_SLAVE },
	{ "rslave", OPT_PROPAGATION, MS_SLAVE | MS_REC },
	{ "unbindable", OPT_PROPAGATION, MS_UNBINDABLE },
	{ "runbindable", OPT_PROPAGATION, MS_UNBINDABLE | MS_REC },
};

/* Append one filesystem-specific option to m->data, comma separated. */
static int append_data(struct mount_cfg *m, const char *opt)
{
	size_t old = m->data ? strlen(m->data) : 0;
	char *p = realloc(m->data, old + strlen(opt) + 2);

	if (!p)
		return -1;
	if (old)
		p[old++] = ',';
	strcpy(p + old, opt);
	m->data = p;
	return 0;
}

static int apply_mount_opt(struct mount_cfg *m, const char *opt)
{
	for (size_t i = 0; i < sizeof(mount_opts) / sizeof(mount_opts[0]); i++) {
		if (strcmp(mount_opts[i].name, opt) != 0)
			continue;
		switch (mount_opts[i].kind) {
		case OPT_SET: m->flags |= mount_opts[i].flag; break;
		case OPT_CLEAR: m->flags &= ~mount_opts[i].flag; break;
		case OPT_PROPAGATION: m->propagation = mount_opts[i].flag; break;
		case OPT_BIND: m->bind = true; m->flags |= mount_opts[i].flag; break;
		}
		return 0;
	}
	return append_data(m, opt);
}

static int parse_mount_options(struct json_object *arr, size_t idx, struct mount_cfg *m,
			       struct launch_error *err)
{
	size_t n;

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "mounts[%zu].options: must be an array of strings", idx);
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(s, json_type_string))
			return bad(err, "mounts[%zu].options[%zu]: must be a string", idx, i);
		if (apply_mount_opt(m, json_object_get_string(s)) < 0)
			return err_sys(err, "allocate", "mount options");
	}
	return 0;
}

static int parse_mount(struct json_object *o, size_t i, struct mount_cfg *m,
		       struct launch_error *err)
{
	char field[64];

	if (!json_object_is_type(o, json_type_object))
		return bad(err, "mounts[%zu]: must be an object", i);
	snprintf(field, sizeof(field), "mounts[%zu].destination", i);
	if (get_string(o, "destination", field, &m->destination, err) < 0)
		return -1;
	snprintf(field, sizeof(field), "mounts[%zu].type", i);
	if (get_string(o, "type", field, &m->type, err) < 0)
		return -1;
	snprintf(field, sizeof(field), "mounts[%zu].source", i);
	if (get_string(o, "source", field, &m->source, err) < 0 ||
	    parse_mount_options(member(o, "options"), i, m, err) < 0)
		return -1;
	if (!m->destination || !m->destination[0])
		return bad(err, "mounts[%zu].destination: required", i);
	if (m->type && strcmp(m->type, "bind") == 0)
		m->bind = true;
	if (!m->type && !m->bind)
		return bad(err, "mounts[%zu].type: required unless options contain bind or rbind", i);
	if (m->bind && (!m->source || !m->source[0]))
		return bad(err, "mounts[%zu].source: required for a bind mount", i);
	if (!m->bind && strcmp(m->type, "cgroup") == 0)
		return bad(err, "mounts[%zu].type: cgroup mounts are not supported yet", i);
	return 0;
}

static int parse_mounts(struct json_object *doc, struct config *cfg, struct launch_error *err)
{
	struct json_object *arr = member(doc, "mounts");
	size_t n;

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "mounts: must be an array");
	n = json_object_array_length(arr);
	cfg->mounts = calloc(n + 1, sizeof(*cfg->mounts));
	if (!cfg->mounts)
		return err_sys(err, "allocate", "mounts");
	cfg->n_mounts = n;
	for (size_t i = 0; i < n; i++)
		if (parse_mount(json_object_array_get_idx(arr, i), i, &cfg->mounts[i], err) < 0)
			return -1;
	return 0;
}

/* ---- linux ---- */

static int parse_namespace(struct json_object *o, size_t i, struct config *cfg,
			   struct launch_error *err)
{
	struct json_object *type = member(o, "type");
	const struct ns_type *ns;

	if (!json_object_is_type(o, json_type_object))
		return bad(err, "linux.namespaces[%zu]: must be an object", i);
	if (!type || !json_object_is_type(type, json_type_string))
		return bad(err, "linux.namespaces[%zu].type: required string", i);
	ns = ns_lookup(json_object_get_string(type));
	if (!ns)
		return bad(err, "linux.namespaces[%zu].type: unknown namespace type \"%s\"", i,
			   json_object_get_string(type));
	if (!ns->supported)
		return bad(err, "linux.namespaces[%zu].type: %s namespaces are not supported yet", i, ns->name);
	for (size_t j = 0; j < cfg->n_joins; j++)
		if (cfg->joins[j].flag == ns->flag)
			return bad(err, "linux.namespaces[%zu].type: duplicate %s namespace", i, ns->name);
	if (cfg->clone_flags & ns->flag)
		return bad(err, "linux.namespaces[%zu].type: duplicate %s namespace", i, ns->name);
	if (member(o, "path")) {
		char field[64];
		const char *path;
		snprintf(field, sizeof(field), "linux.namespaces[%zu].path", i);
		if (get_string(o, "path", field, &path, err) < 0)
			return -1;
		if (path[0] != '/')
			return bad(err, "%s: must be an absolute path", field);
		cfg->joins[cfg->n_joins].flag = ns->flag;
		cfg->joins[cfg->n_joins++].path = path;
		return 0;
	}
	cfg->clone_flags |= ns->flag;
	return 0;
}

static int parse_propagation(const char *name, struct config *cfg, struct launch_error *err)
{
	static const struct { const char *name; unsigned long flag; } modes[] = {
		{ "private", MS_PRIVATE }, { "rprivate", MS_PRIVATE | MS_REC },
		{ "slave", MS_SLAVE }, { "rslave", MS_SLAVE | MS_REC },
		{ "shared", MS_SHARED }, { "rshared", MS_SHARED | MS_REC },
		{ "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
	};

	cfg->rootfs_propagation = MS_PRIVATE | MS_REC;
	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(modes[i].name, name) == 0) {
			cfg->rootfs_propagation = modes[i].flag;
			return 0;
		}
	return bad(err, "linux.rootfsPropagation: unknown mode \"%s\"", name);
}

static int parse_id_maps(struct json_object *lnx, const char *key, struct id_map *maps,
			 size_t *n, struct launch_error *err)
{
	struct json_object *arr = member(lnx, key);

	*n = 0;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "linux.%s: must be an array", key);
	if (json_object_array_length(arr) > MAX_ID_MAPS)
		return bad(err, "linux.%s: at most %d entries", key, MAX_ID_MAPS);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *o = json_object_array_get_idx(arr, i);
		uint64_t c, h, sz;
		if (!json_object_is_type(o, json_type_object) ||
		    json_to_u64(member(o, "containerID"), UINT32_MAX, &c) < 0 ||
		    json_to_u64(member(o, "hostID"), UINT32_MAX, &h) < 0 ||
		    json_to_u64(member(o, "size"), UINT32_MAX, &sz) < 0 || sz == 0 ||
		    c + sz > (uint64_t)UINT32_MAX + 1 || h + sz > (uint64_t)UINT32_MAX + 1)
			return bad(err, "linux.%s[%zu]: needs integer containerID, hostID and a non-zero size within 32 bits", key, i);
		maps[i] = (struct id_map){ (uint32_t)c, (uint32_t)h, (uint32_t)sz };
		*n = i + 1;
	}
	return 0;
}

/* Signed 64-bit integer member; -1 conventionally means unlimited. */
static int get_i64(struct json_object *obj, const char *key, const char *field, bool *has,
		   int64_t *out, struct launch_error *err)
{
	struct json_object *v = member(obj, key);

	*has = false;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return bad(err, "%s: must be an integer", field);
	*has = true;
	*out = json_object_get_int64(v);
	return 0;
}

static int parse_memory(struct json_object *res, struct resources *r, struct launch_error *err)
{
	struct json_object *mem;

	if (get_object(res, "memory", "linux.resources.memory", &mem, err) < 0 ||
	    get_i64(mem, "limit", "linux.resources.memory.limit", &r->has_memory, &r->memory_limit, err) < 0 ||
	    get_i64(mem, "swap", "linux.resources.memory.swap", &r->has_swap, &r->memory_swap, err) < 0)
		return -1;
	if (r->has_memory && r->memory_limit < -1)
		return bad(err, "linux.resources.memory.limit: must be -1 or a positive number of bytes");
	if (r->has_memory && r->memory_limit >= 0 && r->memory_limit < 4096)
		return bad(err, "linux.resources.memory.limit: %lld bytes is below one page", (long long)r->memory_limit);
	if (r->has_swap && (r->memory_swap < -1 || (r->has_memory && r->memory_limit >= 0 &&
						    r->memory_swap >= 0 && r->memory_swap < r->memory_limit)))
		return bad(err, "linux.resources.memory.swap: must be -1 or at least memory.limit (it counts memory plus swap)");
	return 0;
}

static int parse_cpu(struct json_object *res, struct resources *r, struct launch_error *err)
{
	struct json_object *cpu;
	int64_t shares = 0, period = 0;

	if (get_object(res, "cpu", "linux.resources.cpu", &cpu, err) < 0 ||
	    get_i64(cpu, "shares", "linux.resources.cpu.shares", &r->has_shares, &shares, err) < 0 ||
	    get_i64(cpu, "quota", "linux.resources.cpu.quota", &r->has_quota, &r->cpu_quota, err) < 0 ||
	    get_i64(cpu, "period", "linux.resources.cpu.period", &r->has_period, &period, err) < 0 ||
	    get_string(cpu, "cpus", "linux.resources.cpu.cpus", &r->cpus, err) < 0 ||
	    get_string(cpu, "mems", "linux.resources.cpu.mems", &r->mems, err) < 0)
		return -1;
	if (r->has_shares && (shares < 2 || shares > 262144))
		return bad(err, "linux.resources.cpu.shares: must be from 2 to 262144");
	if (r->has_period && (period < 1000 || period > 1000000))
		return bad(err, "linux.resources.cpu.period: must be from 1000 to 1000000 microseconds");
	if (r->has_quota && r->cpu_quota != -1 && r->cpu_quota < 1000)
		return bad(err, "linux.resources.cpu.quota: must be -1 or at least 1000 microseconds");
	if (r->cpus && strspn(r->cpus, "0123456789,-") != strlen(r->cpus))
		return bad(err, "linux.resources.cpu.cpus: must be a CPU list such as \"0-1,3\"");
	if (r->mems && strspn(r->mems, "0123456789,-") != strlen(r->mems))
		return bad(err, "linux.resources.cpu.mems: must be a node list such as \"0\"");
	r->cpu_shares = (uint64_t)shares;
	r->cpu_period = (uint64_t)period;
	return 0;
}

static int parse_resources(struct json_object *lnx, struct config *cfg, struct launch_error *err)
{
	static const char *const known[] = { "memory", "cpu", "pids", "devices" };
	struct json_object *res, *pids;
	struct resources *r = &cfg->res;

	if (get_object(lnx, "resources", "linux.resources", &res, err) < 0)
		return -1;
	if (!res)
		return 0;
	json_object_object_foreach(res, key, val) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok && !json_object_is_type(val, json_type_null))
			return bad(err, "linux.resources.%s: not supported (supported: memory, cpu, pids, devices)", key);
	}
	if (member(res, "devices") && !json_object_is_type(member(res, "devices"), json_type_array))
		return bad(err, "linux.resources.devices: must be an array");
	if (parse_memory(res, r, err) < 0 || parse_cpu(res, r, err) < 0 ||
	    get_object(res, "pids", "linux.resources.pids", &pids, err) < 0 ||
	    get_i64(pids, "limit", "linux.resources.pids.limit", &r->has_pids, &r->pids_limit, err) < 0)
		return -1;
	if (r->has_pids && r->pids_limit < -1)
		return bad(err, "linux.resources.pids.limit: must be -1, 0 (unlimited) or a positive count");
	cfg->has_resources = r->has_memory || r->has_swap || r->has_shares || r->has_quota ||
			     r->has_period || r->cpus || r->mems || r->has_pids;
	return 0;
}

static int parse_path_list(struct json_object *lnx, const char *key, const char ***out,
			   struct launch_error *err)
{
	char field[64];

	snprintf(field, sizeof(field), "linux.%s", key);
	if (get_string_array(member(lnx, key), field, false, out, err) < 0)
		return -1;
	for (size_t i = 0; (*out)[i]; i++)
		if ((*out)[i][0] != '/')
			return bad(err, "%s[%zu]: must be an absolute path", field, i);
	return 0;
}

static int parse_sysctl(struct json_object *lnx, struct config *cfg, struct launch_error *err)
{
	struct json_object *obj;
	size_t n = 0;

	if (get_object(lnx, "sysctl", "linux.sysctl", &obj, err) < 0)
		return -1;
	if (!obj)
		return 0;
	cfg->sysctls = calloc((size_t)json_object_object_length(obj) + 1, sizeof(*cfg->sysctls));
	if (!cfg->sysctls)
		return err_sys(err, "allocate", "linux.sysctl");
	json_object_object_foreach(obj, key, val) {
		if (!json_object_is_type(val, json_type_string))
			return bad(err, "linux.sysctl.%s: must be a string", key);
		if (!key[0] || strstr(key, "..") || strspn(key, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") != strlen(key))
			return bad(err, "linux.sysctl.%s: not a valid sysctl name", key);
		cfg->sysctls[n].key = key;
		cfg->sysctls[n++].value = json_object_get_string(val);
	}
	cfg->n_sysctls = n;
	return 0;
}

/* Only the default device set exists in the container's /dev. */
static int parse_devices(struct json_object *lnx, struct launch_error *err)
{
	static const char *const defaults[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
						"/dev/urandom", "/dev/tty" };
	struct json_object *arr = member(lnx, "devices");

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "linux.devices: must be an array");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *path = NULL;
		bool ok = false;
		if (get_string(json_object_array_get_idx(arr, i), "path", "linux.devices[].path", &path, err) < 0)
			return -1;
		for (size_t j = 0; path && j < sizeof(defaults) / sizeof(defaults[0]); j++)
			ok |= strcmp(path, defaults[j]) == 0;
		if (!ok)
			return bad(err, "linux.devices[%zu]: only the default devices (/dev/null, zero, full, random, urandom, tty) are supported", i);
	}
	return 0;
}

static int parse_linux(struct json_object *doc, struct config *cfg, struct launch_error *err)
{
	struct json_object *lnx, *nss;
	const char *prop;

	if (get_object(doc, "linux", "linux", &lnx, err) < 0 ||
	    get_string(lnx, "rootfsPropagation", "linux.rootfsPropagation", &prop, err) < 0 ||
	    parse_propagation(prop, cfg, err) < 0 ||
	    parse_id_maps(lnx, "uidMappings", cfg->uid_maps, &cfg->n_uid_maps, err) < 0 ||
	    parse_id_maps(lnx, "gidMappings", cfg->gid_maps, &cfg->n_gid_maps, err) < 0 ||
	    get_string(lnx, "cgroupsPath", "linux.cgroupsPath", &cfg->cgroups_path, err) < 0 ||
	    parse_resources(lnx, cfg, err) < 0 ||
	    get_object(lnx, "seccomp", "linux.seccomp", &cfg->seccomp, err) < 0 ||
	    parse_path_list(lnx, "maskedPaths", &cfg->masked_paths, err) < 0 ||
	    parse_path_list(lnx, "readonlyPaths", &cfg->readonly_paths, err) < 0 ||
	    parse_sysctl(lnx, cfg, err) < 0 || parse_devices(lnx, err) < 0)
		return -1;
	if (cfg->cgroups_path && (strstr(cfg->cgroups_path, "..") || strchr(cfg->cgroups_path, ':')))
		return bad(err, "linux.cgroupsPath: must be a path without \"..\" (systemd slice:prefix:name form is not supported)");
	nss = member(lnx, "namespaces");
	if (!nss)
		return 0;
	if (!json_object_is_type(nss, json_type_array))
		return bad(err, "linux.namespaces: must be an array");
	if (json_object_array_length(nss) > MAX_NS_JOINS)
		return bad(err, "linux.namespaces: too many entries");
	for (size_t i = 0; i < json_object_array_length(nss); i++)
		if (parse_namespace(json_object_array_get_idx(nss, i), i, cfg, err) < 0)
			return -1;
	return 0;
}

/* Namespaced sysctls only, and only with their namespace private (as runc). */
static int check_sysctl(const struct config *cfg, const char *key, struct launch_error *err)
{
	static const char *const ipc[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
					   "kernel.sem", "kernel.shmall", "kernel.shmmax",
					   "kernel.shmmni", "kernel.shm_rmid_forced" };

	for (size_t i = 0; i < sizeof(ipc) / sizeof(ipc[0]); i++)
		if (strcmp(key, ipc[i]) == 0)
			return cfg->clone_flags & CLONE_NEWIPC ? 0 :
			       bad(err, "linux.sysctl.%s: requires a new ipc namespace", key);
	if (strncmp(key, "fs.mqueue.", 10) == 0)
		return cfg->clone_flags & CLONE_NEWIPC ? 0 :
		       bad(err, "linux.sysctl.%s: requires a new ipc namespace", key);
	if (strncmp(key, "net.", 4) == 0)
		return cfg->clone_flags & CLONE_NEWNET ? 0 :
		       bad(err, "linux.sysctl.%s: requires a new network namespace", key);
	return bad(err, "linux.sysctl.%s: not a namespaced sysctl, refused", key);
}

int64_t config_map_id(const struct id_map *maps, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (id >= maps[i].container_id && id - maps[i].container_id < maps[i].size)
			return (int64_t)maps[i].host_id + (id - maps[i].container_id);
	return -1;
}

static int check_user_ns(const struct config *cfg, struct launch_error *err)
{
	if (!(cfg->clone_flags & CLONE_NEWUSER)) {
		if (cfg->n_uid_maps || cfg->n_gid_maps)
			return bad(err, "linux.uidMappings: require a new user namespace in linux.namespaces");
		return 0;
	}
	if (!cfg->n_uid_maps || !cfg->n_gid_maps)
		return bad(err, "linux.uidMappings/gidMappings: required with a new user namespace");
	if (config_map_id(cfg->uid_maps, cfg->n_uid_maps, cfg->uid) < 0)
		return bad(err, "process.user.uid: %u is not mapped by linux.uidMappings", cfg->uid);
	if (config_map_id(cfg->gid_maps, cfg->n_gid_maps, cfg->gid) < 0)
		return bad(err, "process.user.gid: %u is not mapped by linux.gidMappings", cfg->gid);
	for (size_t i = 0; i < cfg->n_additional_gids; i++)
		if (config_map_id(cfg->gid_maps, cfg->n_gid_maps, cfg->additional_gids[i]) < 0)
			return bad(err, "process.user.additionalGids[%zu]: %u is not mapped by linux.gidMappings",
				   i, cfg->additional_gids[i]);
	return 0;
}

static int check_hooks(struct json_object *doc, struct launch_error *err)
{
	struct json_object *hooks = member(doc, "hooks");

	if (!hooks)
		return 0;
	if (!json_object_is_type(hooks, json_type_object))
		return bad(err, "hooks: must be an object");
	json_object_object_foreach(hooks, key, val) {
		if (val && json_object_is_type(val, json_type_array) && json_object_array_length(val) == 0)
			continue;
		if (val && !json_object_is_type(val, json_type_null))
			return bad(err, "hooks.%s: hooks are not supported (see `skiff-launch features`)", key);
	}
	return 0;
}

/* Fields whose meaning depends on other fields. */
static int check_consistency(struct config *cfg, struct launch_error *err)
{
	if (cfg->hostname && !(cfg->clone_flags & CLONE_NEWUTS))
		return bad(err, "hostname: requires a uts namespace in linux.namespaces");
	if (cfg->n_mounts && !(cfg->clone_flags & CLONE_NEWNS))
		return bad(err, "mounts: require a mount namespace in linux.namespaces");
	if (!(cfg->clone_flags & CLONE_NEWNS))
		return bad(err, "linux.namespaces: a mount namespace is required (pivot_root)");
	for (size_t i = 0; i < cfg->n_sysctls; i++)
		if (check_sysctl(cfg, cfg->sysctls[i].key, err) < 0)
			return -1;
	return check_user_ns(cfg, err);
}

static int parse_document(struct json_object *doc, struct config *cfg, struct launch_error *err)
{
	const char *version;

	if (!json_object_is_type(doc, json_type_object))
		return bad(err, "top level: must be an object");
	if (get_string(doc, "ociVersion", "ociVersion", &version, err) < 0)
		return -1;
	if (!version || strncmp(version, "1.", 2) != 0)
		return bad(err, "ociVersion: must be a 1.x version string");
	if (parse_process(doc, cfg, err) < 0 || parse_root(doc, cfg, err) < 0 ||
	    get_string(doc, "hostname", "hostname", &cfg->hostname, err) < 0 ||
	    parse_mounts(doc, cfg, err) < 0 || parse_linux(doc, cfg, err) < 0 ||
	    check_hooks(doc, err) < 0)
		return -1;
	return check_consistency(cfg, err);
}

int config_parse(const char *json, struct config *cfg, struct launch_error *err)
{
	struct json_tokener *tok = json_tokener_new();
	enum json_tokener_error jerr;

	memset(cfg, 0, sizeof(*cfg));
	if (!tok)
		return err_sys(err, "allocate", "json tokener");
	cfg->doc = json_tokener_parse_ex(tok, json, (int)strlen(json) + 1);
	jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!cfg->doc || jerr != json_tokener_success)
		return bad(err, "invalid JSON: %s", json_tokener_error_desc(jerr));
	return parse_document(cfg->doc, cfg, err);
}

static int read_file(const char *path, char **out, struct launch_error *err)
{
	_cleanup_fd_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return err_sys(err, "open", path);
	if (st.st_size > CONFIG_MAX_SIZE)
		return err_errno(err, EFBIG, "read", path);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return err_sys(err, "allocate for", path);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? err_sys(err, "read", path) : err_errno(err, EIO, "read", path);
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	buf = NULL;
	return 0;
}

int config_read(const char *bundle, char **json, struct launch_error *err)
{
	char path[PATH_MAX];

	if (path_join(path, sizeof(path), bundle, "config.json") < 0)
		return err_sys(err, "open", bundle);
	return read_file(path, json, err);
}

int config_load(const char *bundle, struct config *cfg, struct launch_error *err)
{
	_cleanup_free_ char *json = NULL;

	memset(cfg, 0, sizeof(*cfg));
	if (config_read(bundle, &json, err) < 0)
		return -1;
	return config_parse(json, cfg, err);
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		free(cfg->mounts[i].data);
	free(cfg->mounts);
	free(cfg->masked_paths);
	free(cfg->readonly_paths);
	free(cfg->sysctls);
	free(cfg->rlimits);
	free(cfg->additional_gids);
	free(cfg->args);
	free(cfg->env);
	if (cfg->doc)
		json_object_put(cfg->doc);
	memset(cfg, 0, sizeof(*cfg));
}

const char *config_getenv(const struct config *cfg, const char *name)
{
	size_t len = strlen(name);

	for (const char **e = cfg->env; e && *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}
