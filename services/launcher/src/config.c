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

/*
 * A setting this launcher cannot honour on this host is refused, naming the field, rather than
 * accepted and dropped: a config asking for confinement (an LSM profile, a label) must never
 * run without it. Empty strings, empty objects and arrays, null and false ask for nothing.
 */
static bool asks_for_something(struct json_object *v)
{
	switch (v ? json_object_get_type(v) : json_type_null) {
	case json_type_null: return false;
	case json_type_boolean: return json_object_get_boolean(v);
	case json_type_string: return json_object_get_string_len(v) > 0;
	case json_type_array: return json_object_array_length(v) > 0;
	case json_type_object: return json_object_object_length(v) > 0;
	default: return true;
	}
}

struct unsupported {
	const char *key, *why;
};

static int refuse_unsupported(struct json_object *obj, const char *prefix,
			      const struct unsupported *list, size_t n, struct launch_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (asks_for_something(member(obj, list[i].key)))
			return bad(err, "%s%s: %s", prefix, list[i].key, list[i].why);
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

	struct json_object *umask = member(user, "umask");
	uint64_t mask;

	if (get_id(user, "uid", "process.user.uid", &cfg->uid, err) < 0 ||
	    get_id(user, "gid", "process.user.gid", &cfg->gid, err) < 0)
		return -1;
	if (umask && json_to_u64(umask, 0777, &mask) < 0)
		return bad(err, "process.user.umask: must be an integer from 0 to 0777");
	cfg->has_umask = umask != NULL;
	cfg->umask = umask ? (mode_t)mask : 0;
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
	/*
	 * The kernel raises an ambient capability only if it is permitted and inheritable. runc's
	 * default config lists ambient capabilities that are not inheritable: such a capability
	 * cannot be kept across the exec, so it is left out, and the launcher warns (as runc does).
	 */
	stray = cfg->caps[CAP_SET_AMBIENT] & ~(cfg->caps[CAP_SET_PERMITTED] & cfg->caps[CAP_SET_INHERITABLE]);
	cfg->caps[CAP_SET_AMBIENT] &= ~stray;
	cfg->ambient_dropped = stray;
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
	if (!proc) { /* optional for create; `start` and `run` need one */
		cfg->cwd = "/";
		return 0;
	}
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
	static const struct unsupported process_unsupported[] = {
		{ "apparmorProfile", "AppArmor is not supported by skiff-launch; refused rather than run unconfined" },
		{ "selinuxLabel", "SELinux is not supported by skiff-launch; refused rather than run unlabelled" },
		{ "consoleSize", "needs process.terminal, which is not supported" },
		{ "ioPriority", "not supported yet" },
		{ "scheduler", "not supported yet" },
		{ "execCPUAffinity", "not supported yet" },
		{ "commandLine", "a Windows setting" },
	};

	if (terminal)
		return bad(err, "process.terminal: a terminal is not supported yet");
	if (refuse_unsupported(proc, "process.", process_unsupported,
			       sizeof(process_unsupported) / sizeof(process_unsupported[0]), err) < 0)
		return -1;
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
	if (asks_for_something(member(o, "uidMappings")) || asks_for_something(member(o, "gidMappings")))
		return bad(err, "mounts[%zu]: idmapped mounts (uidMappings, gidMappings) are not supported yet", i);
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

/* Members of obj must be among known (null ones aside): "linux.resources.memory.foo: not supported". */
static int check_keys(struct json_object *obj, const char *field, const char *const *known,
		      size_t n, struct launch_error *err)
{
	if (!obj)
		return 0;
	json_object_object_foreach(obj, key, val) {
		bool ok = json_object_is_type(val, json_type_null);
		for (size_t i = 0; i < n && !ok; i++)
			ok = strcmp(key, known[i]) == 0;
		if (!ok)
			return bad(err, "%s.%s: not supported by skiff-launch", field, key);
	}
	return 0;
}
#define CHECK_KEYS(obj, field, known, err) check_keys(obj, field, known, sizeof(known) / sizeof(known[0]), err)

/* An optional boolean member that must be a boolean when present. */
static int get_flag(struct json_object *obj, const char *key, const char *field, bool *has, bool *out,
		    struct launch_error *err)
{
	*has = member(obj, key) != NULL;
	return get_bool(obj, key, field, out, err);
}

/*
 * memory.kernel and memory.kernelTCP: Linux charges kernel memory (and, on cgroup v2, socket
 * memory) to the memory limit itself, so a kernel limit at or above memory.limit is kept by that
 * limit. A smaller one would need memory.kmem.limit_in_bytes, which Linux 5.16 and later accept
 * and ignore: refused.
 */
static int check_kernel_limit(struct json_object *mem, const struct resources *r, struct launch_error *err)
{
	bool has;
	int64_t v;

	if (get_i64(mem, "kernel", "linux.resources.memory.kernel", &has, &v, err) < 0)
		return -1;
	if (!has || v == -1)
		return 0;
	if (!r->has_memory || r->memory_limit < 0 || v < r->memory_limit)
		return bad(err, "linux.resources.memory.kernel: a kernel memory limit below memory.limit is not "
			   "enforced by this kernel (kernel memory counts in memory.limit, which keeps a larger one)");
	return 0;
}

static int parse_memory(struct json_object *res, struct resources *r, struct launch_error *err)
{
	static const char *const known[] = { "limit", "reservation", "swap", "kernel", "kernelTCP",
					     "swappiness", "disableOOMKiller", "useHierarchy" };
	struct json_object *mem;
	bool has_hier, hier, has_oom;
	int64_t swappiness = 0;

	if (get_object(res, "memory", "linux.resources.memory", &mem, err) < 0 ||
	    CHECK_KEYS(mem, "linux.resources.memory", known, err) < 0 ||
	    get_i64(mem, "limit", "linux.resources.memory.limit", &r->has_memory, &r->memory_limit, err) < 0 ||
	    get_i64(mem, "swap", "linux.resources.memory.swap", &r->has_swap, &r->memory_swap, err) < 0 ||
	    get_i64(mem, "reservation", "linux.resources.memory.reservation", &r->has_reservation,
		    &r->memory_reservation, err) < 0 ||
	    get_i64(mem, "kernelTCP", "linux.resources.memory.kernelTCP", &r->has_kernel_tcp, &r->kernel_tcp, err) < 0 ||
	    get_i64(mem, "swappiness", "linux.resources.memory.swappiness", &r->has_swappiness, &swappiness, err) < 0 ||
	    get_flag(mem, "disableOOMKiller", "linux.resources.memory.disableOOMKiller", &has_oom,
		     &r->disable_oom_killer, err) < 0 ||
	    get_flag(mem, "useHierarchy", "linux.resources.memory.useHierarchy", &has_hier, &hier, err) < 0)
		return -1;
	if (r->has_memory && r->memory_limit < -1)
		return bad(err, "linux.resources.memory.limit: must be -1 or a positive number of bytes");
	if (r->has_memory && r->memory_limit >= 0 && r->memory_limit < 4096)
		return bad(err, "linux.resources.memory.limit: %lld bytes is below one page", (long long)r->memory_limit);
	if (r->has_swap && (r->memory_swap < -1 || (r->has_memory && r->memory_limit >= 0 &&
						    r->memory_swap >= 0 && r->memory_swap < r->memory_limit)))
		return bad(err, "linux.resources.memory.swap: must be -1 or at least memory.limit (it counts memory plus swap)");
	if (r->has_reservation && r->memory_reservation < -1)
		return bad(err, "linux.resources.memory.reservation: must be -1 or a number of bytes");
	if (r->has_kernel_tcp && r->kernel_tcp < -1)
		return bad(err, "linux.resources.memory.kernelTCP: must be -1 or a number of bytes");
	if (r->has_swappiness && (swappiness < 0 || swappiness > 100))
		return bad(err, "linux.resources.memory.swappiness: must be from 0 to 100");
	if (has_hier && !hier)
		return bad(err, "linux.resources.memory.useHierarchy: false is not supported (Linux always accounts hierarchically)");
	r->swappiness = (uint64_t)swappiness;
	return check_kernel_limit(mem, r, err);
}

static int parse_cpu(struct json_object *res, struct resources *r, struct launch_error *err)
{
	static const char *const known[] = { "shares", "quota", "period", "cpus", "mems" };
	struct json_object *cpu;
	int64_t shares = 0, period = 0;

	if (get_object(res, "cpu", "linux.resources.cpu", &cpu, err) < 0 ||
	    CHECK_KEYS(cpu, "linux.resources.cpu", known, err) < 0 ||
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

/* A device number of a rule: absent or null = any (-1). */
static int get_device_number(struct json_object *o, const char *key, size_t i, int64_t *out,
			     struct launch_error *err)
{
	struct json_object *v = member(o, key);

	*out = -1;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < -1 ||
	    json_object_get_int64(v) > UINT32_MAX)
		return bad(err, "linux.resources.devices[%zu].%s: must be a device number or -1 (any)", i, key);
	*out = json_object_get_int64(v);
	return 0;
}

static int parse_device_rule(struct json_object *o, size_t i, struct device_rule *d, struct launch_error *err)
{
	static const char *const known[] = { "allow", "type", "major", "minor", "access" };
	struct json_object *allow = member(o, "allow");
	const char *type, *access;
	char field[48];

	snprintf(field, sizeof(field), "linux.resources.devices[%zu]", i);
	if (!json_object_is_type(o, json_type_object))
		return bad(err, "%s: must be an object", field);
	if (CHECK_KEYS(o, field, known, err) < 0 || get_string(o, "type", field, &type, err) < 0 ||
	    get_string(o, "access", field, &access, err) < 0 ||
	    get_device_number(o, "major", i, &d->major, err) < 0 ||
	    get_device_number(o, "minor", i, &d->minor, err) < 0)
		return -1;
	if (!allow || !json_object_is_type(allow, json_type_boolean))
		return bad(err, "%s.allow: required boolean", field);
	d->allow = json_object_get_boolean(allow);
	if (type && (strlen(type) != 1 || !strchr("acb", type[0])))
		return bad(err, "%s.type: must be \"a\", \"c\" or \"b\"", field);
	d->type = type ? type[0] : 'a';
	if (!access || !access[0])
		access = "rwm";
	if (strlen(access) > 3 || strspn(access, "rwm") != strlen(access))
		return bad(err, "%s.access: must be made of r, w and m", field);
	snprintf(d->access, sizeof(d->access), "%s", access);
	return 0;
}

static int parse_device_rules(struct json_object *arr, struct resources *r, struct launch_error *err)
{
	size_t n;

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "linux.resources.devices: must be an array");
	n = json_object_array_length(arr);
	if (n > MAX_DEVICE_RULES)
		return bad(err, "linux.resources.devices: at most %d rules", MAX_DEVICE_RULES);
	/* room for the rules the launcher appends (see add_device_allows) */
	r->devices = calloc(n + MAX_DEVICE_RULES + 16, sizeof(*r->devices));
	if (!r->devices)
		return err_sys(err, "allocate", "linux.resources.devices");
	for (size_t i = 0; i < n; i++)
		if (parse_device_rule(json_object_array_get_idx(arr, i), i, &r->devices[i], err) < 0)
			return -1;
	r->n_devices = n;
	return 0;
}

static int parse_resources(struct json_object *lnx, struct config *cfg, struct launch_error *err)
{
	static const char *const known[] = { "memory", "cpu", "pids", "devices" };
	static const char *const pids_known[] = { "limit" };
	struct json_object *res, *pids;
	struct resources *r = &cfg->res;

	if (get_object(lnx, "resources", "linux.resources", &res, err) < 0)
		return -1;
	if (!res)
		return 0;
	if (CHECK_KEYS(res, "linux.resources", known, err) < 0 ||
	    parse_memory(res, r, err) < 0 || parse_cpu(res, r, err) < 0 ||
	    parse_device_rules(member(res, "devices"), r, err) < 0 ||
	    get_object(res, "pids", "linux.resources.pids", &pids, err) < 0 ||
	    CHECK_KEYS(pids, "linux.resources.pids", pids_known, err) < 0 ||
	    get_i64(pids, "limit", "linux.resources.pids.limit", &r->has_pids, &r->pids_limit, err) < 0)
		return -1;
	if (r->has_pids && r->pids_limit < -1)
		return bad(err, "linux.resources.pids.limit: must be -1, 0 (unlimited) or a positive count");
	cfg->has_resources = r->has_memory || r->has_swap || r->has_shares || r->has_quota ||
			     r->has_period || r->cpus || r->mems || r->has_pids || r->has_reservation ||
			     r->has_swappiness || r->has_kernel_tcp || r->disable_oom_killer || r->devices;
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

/* A ".." component anywhere in path. */
static bool has_dotdot(const char *path)
{
	for (const char *p = strstr(path, ".."); p; p = strstr(p + 1, ".."))
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

static int parse_device(struct json_object *o, size_t i, struct device_cfg *d, struct launch_error *err)
{
	static const char *const known[] = { "path", "type", "major", "minor", "fileMode", "uid", "gid" };
	struct json_object *mode = member(o, "fileMode");
	const char *type;
	uint64_t major = 0, minor = 0, m = 0666;
	char field[32];

	snprintf(field, sizeof(field), "linux.devices[%zu]", i);
	if (!json_object_is_type(o, json_type_object))
		return bad(err, "%s: must be an object", field);
	if (CHECK_KEYS(o, field, known, err) < 0 || get_string(o, "path", field, &d->path, err) < 0 ||
	    get_string(o, "type", field, &type, err) < 0 ||
	    get_id(o, "uid", "linux.devices[].uid", &d->uid, err) < 0 ||
	    get_id(o, "gid", "linux.devices[].gid", &d->gid, err) < 0)
		return -1;
	if (!d->path || strncmp(d->path, "/dev/", 5) != 0 || !d->path[5] || has_dotdot(d->path))
		return bad(err, "%s.path: must be a path below /dev/ without \"..\"", field);
	if (!type || strlen(type) != 1 || !strchr("cbup", type[0]))
		return bad(err, "%s.type: must be \"c\", \"b\", \"u\" or \"p\"", field);
	d->type = type[0];
	if (d->type != 'p' && (json_to_u64(member(o, "major"), UINT32_MAX, &major) < 0 ||
			       json_to_u64(member(o, "minor"), UINT32_MAX, &minor) < 0))
		return bad(err, "%s: major and minor numbers are required for a device", field);
	if (mode && json_to_u64(mode, 0777, &m) < 0)
		return bad(err, "%s.fileMode: must be permission bits from 0 to 0777 (no setuid, setgid or sticky)", field);
	d->major = (uint32_t)major;
	d->minor = (uint32_t)minor;
	d->mode = (mode_t)m;
	return 0;
}

/* linux.devices: nodes made in the container's /dev (see mounts.c). */
static int parse_devices(struct json_object *lnx, struct config *cfg, struct launch_error *err)
{
	struct json_object *arr = member(lnx, "devices");
	size_t n;

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "linux.devices: must be an array");
	n = json_object_array_length(arr);
	if (n > MAX_DEVICE_RULES)
		return bad(err, "linux.devices: at most %d devices", MAX_DEVICE_RULES);
	cfg->devices = calloc(n + 1, sizeof(*cfg->devices));
	if (!cfg->devices)
		return err_sys(err, "allocate", "linux.devices");
	for (size_t i = 0; i < n; i++)
		if (parse_device(json_object_array_get_idx(arr, i), i, &cfg->devices[i], err) < 0)
			return -1;
	cfg->n_devices = n;
	return 0;
}

/*
 * With a device cgroup, the devices the container is given must stay usable in it: the default
 * set the launcher provides (/dev/null, zero, full, random, urandom, tty, ptmx and the pts
 * terminals) and each linux.devices node, allowed after the config's own rules (as runc does).
 */
static void add_device_allows(struct config *cfg)
{
	static const struct device_rule defaults[] = {
		{ true, 'c', 1, 3, "rwm" }, { true, 'c', 1, 5, "rwm" }, { true, 'c', 1, 7, "rwm" },
		{ true, 'c', 1, 8, "rwm" }, { true, 'c', 1, 9, "rwm" }, { true, 'c', 5, 0, "rwm" },
		{ true, 'c', 5, 2, "rwm" }, { true, 'c', 136, -1, "rwm" },
	};
	struct resources *r = &cfg->res;

	if (!r->devices)
		return;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		r->devices[r->n_devices++] = defaults[i];
	for (size_t i = 0; i < cfg->n_devices; i++)
		if (cfg->devices[i].type != 'p')
			r->devices[r->n_devices++] = (struct device_rule){
				true, cfg->devices[i].type == 'b' ? 'b' : 'c', cfg->devices[i].major,
				cfg->devices[i].minor, "rwm" };
}

static int parse_personality(struct json_object *lnx, struct config *cfg, struct launch_error *err)
{
	static const char *const known[] = { "domain", "flags" };
	struct json_object *p;
	const char *domain;

	if (get_object(lnx, "personality", "linux.personality", &p, err) < 0 || !p)
		return 0;
	if (CHECK_KEYS(p, "linux.personality", known, err) < 0 ||
	    get_string(p, "domain", "linux.personality.domain", &domain, err) < 0)
		return -1;
	if (asks_for_something(member(p, "flags")))
		return bad(err, "linux.personality.flags: no personality flags are supported");
	if (!domain || (strcmp(domain, "LINUX") != 0 && strcmp(domain, "LINUX32") != 0))
		return bad(err, "linux.personality.domain: must be \"LINUX\" or \"LINUX32\"");
	cfg->has_personality = true;
	cfg->personality = strcmp(domain, "LINUX") == 0 ? 0x0000 /* PER_LINUX */ : 0x0008 /* PER_LINUX32 */;
	return 0;
}

static int parse_linux(struct json_object *doc, struct config *cfg, struct launch_error *err)
{
	static const struct unsupported linux_unsupported[] = {
		{ "mountLabel", "SELinux is not supported by skiff-launch; refused rather than mount unlabelled" },
		{ "intelRdt", "Intel RDT is not supported" },
		{ "timeOffsets", "time namespaces are not supported yet" },
		{ "memoryPolicy", "not supported yet" },
		{ "netDevices", "not supported yet" },
	};
	static const struct unsupported seccomp_unsupported[] = {
		{ "listenerPath", "seccomp notification (SCMP_ACT_NOTIFY) is not supported" },
		{ "listenerMetadata", "seccomp notification (SCMP_ACT_NOTIFY) is not supported" },
	};
	struct json_object *lnx, *nss;
	const char *prop;

	if (get_object(doc, "linux", "linux", &lnx, err) < 0 ||
	    refuse_unsupported(lnx, "linux.", linux_unsupported,
			       sizeof(linux_unsupported) / sizeof(linux_unsupported[0]), err) < 0 ||
	    get_string(lnx, "rootfsPropagation", "linux.rootfsPropagation", &prop, err) < 0 ||
	    parse_propagation(prop, cfg, err) < 0 ||
	    parse_id_maps(lnx, "uidMappings", cfg->uid_maps, &cfg->n_uid_maps, err) < 0 ||
	    parse_id_maps(lnx, "gidMappings", cfg->gid_maps, &cfg->n_gid_maps, err) < 0 ||
	    get_string(lnx, "cgroupsPath", "linux.cgroupsPath", &cfg->cgroups_path, err) < 0 ||
	    parse_resources(lnx, cfg, err) < 0 ||
	    get_object(lnx, "seccomp", "linux.seccomp", &cfg->seccomp, err) < 0 ||
	    parse_path_list(lnx, "maskedPaths", &cfg->masked_paths, err) < 0 ||
	    parse_path_list(lnx, "readonlyPaths", &cfg->readonly_paths, err) < 0 ||
	    parse_sysctl(lnx, cfg, err) < 0 || parse_devices(lnx, cfg, err) < 0 ||
	    parse_personality(lnx, cfg, err) < 0 ||
	    refuse_unsupported(cfg->seccomp, "linux.seccomp.", seccomp_unsupported,
			       sizeof(seccomp_unsupported) / sizeof(seccomp_unsupported[0]), err) < 0)
		return -1;
	add_device_allows(cfg);
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

static const char *const hook_names[HOOK_KIND_COUNT] = {
	[HOOK_PRESTART] = "prestart", [HOOK_CREATE_RUNTIME] = "createRuntime",
	[HOOK_CREATE_CONTAINER] = "createContainer", [HOOK_START_CONTAINER] = "startContainer",
	[HOOK_POSTSTART] = "poststart", [HOOK_POSTSTOP] = "poststop",
};

const char *config_hook_name(enum hook_kind kind)
{
	return hook_names[kind];
}

static int parse_hook(struct json_object *o, const char *field, struct hook_cfg *h, struct launch_error *err)
{
	static const char *const known[] = { "path", "args", "env", "timeout" };
	struct json_object *timeout = member(o, "timeout");
	char sub[96];

	if (!json_object_is_type(o, json_type_object))
		return bad(err, "%s: must be an object", field);
	if (CHECK_KEYS(o, field, known, err) < 0 || get_string(o, "path", field, &h->path, err) < 0)
		return -1;
	if (!h->path || h->path[0] != '/')
		return bad(err, "%s.path: required, an absolute path", field);
	snprintf(sub, sizeof(sub), "%s.args", field);
	if (member(o, "args") && get_string_array(member(o, "args"), sub, false, &h->args, err) < 0)
		return -1;
	snprintf(sub, sizeof(sub), "%s.env", field);
	if (get_string_array(member(o, "env"), sub, false, &h->env, err) < 0)
		return -1;
	if (timeout && (!json_object_is_type(timeout, json_type_int) || json_object_get_int64(timeout) < 1 ||
			json_object_get_int64(timeout) > 86400))
		return bad(err, "%s.timeout: must be a number of seconds from 1 to 86400", field);
	h->timeout = timeout ? (int)json_object_get_int64(timeout) : 0;
	return 0;
}

int config_hook_list(struct json_object *arr, enum hook_kind kind, struct hook_list *list,
		     struct launch_error *err)
{
	size_t n;

	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "hooks.%s: must be an array", hook_names[kind]);
	n = json_object_array_length(arr);
	if (n > 64)
		return bad(err, "hooks.%s: at most 64 hooks", hook_names[kind]);
	list->hooks = calloc(n + 1, sizeof(*list->hooks));
	if (!list->hooks)
		return err_sys(err, "allocate", "hooks");
	for (size_t i = 0; i < n; i++) {
		char field[48];
		snprintf(field, sizeof(field), "hooks.%s[%zu]", hook_names[kind], i);
		if (parse_hook(json_object_array_get_idx(arr, i), field, &list->hooks[i], err) < 0)
			return -1;
		list->n = i + 1;
	}
	return 0;
}

char *config_late_hooks_json(const struct config *cfg)
{
	struct json_object *hooks = member(cfg->doc, "hooks"), *o;
	const char *text;
	char *out;

	if (!cfg->hooks[HOOK_POSTSTART].n && !cfg->hooks[HOOK_POSTSTOP].n)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	for (int k = HOOK_POSTSTART; k <= HOOK_POSTSTOP; k++)
		if (member(hooks, hook_names[k]))
			json_object_object_add(o, hook_names[k], json_object_get(member(hooks, hook_names[k])));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	out = text ? strdup(text) : NULL;
	json_object_put(o);
	return out;
}

void config_hook_list_free(struct hook_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		free(list->hooks[i].args);
		free(list->hooks[i].env);
	}
	free(list->hooks);
	memset(list, 0, sizeof(*list));
}

static int parse_hooks(struct json_object *doc, struct config *cfg, struct launch_error *err)
{
	struct json_object *hooks;

	if (get_object(doc, "hooks", "hooks", &hooks, err) < 0)
		return -1;
	if (!hooks)
		return 0;
	if (check_keys(hooks, "hooks", hook_names, HOOK_KIND_COUNT, err) < 0)
		return -1;
	for (int k = 0; k < HOOK_KIND_COUNT; k++)
		if (member(hooks, hook_names[k]) &&
		    config_hook_list(member(hooks, hook_names[k]), (enum hook_kind)k, &cfg->hooks[k], err) < 0)
			return -1;
	return 0;
}

/* annotations: an object of strings, kept for the state. */
static int parse_annotations(struct json_object *doc, struct config *cfg, struct launch_error *err)
{
	if (get_object(doc, "annotations", "annotations", &cfg->annotations, err) < 0)
		return -1;
	if (!cfg->annotations)
		return 0;
	json_object_object_foreach(cfg->annotations, key, val) {
		if (!json_object_is_type(val, json_type_string))
			return bad(err, "annotations.%s: must be a string", key);
	}
	return 0;
}

/* The namespace is the container's own: new, or joined by path. */
static bool has_namespace(const struct config *cfg, unsigned long flag)
{
	if (cfg->clone_flags & flag)
		return true;
	for (size_t i = 0; i < cfg->n_joins; i++)
		if (cfg->joins[i].flag == flag)
			return true;
	return false;
}

/* Fields whose meaning depends on other fields. */
static int check_consistency(struct config *cfg, struct launch_error *err)
{
	/* inherited, they would be the host's own */
	if (cfg->hostname && !has_namespace(cfg, CLONE_NEWUTS))
		return bad(err, "hostname: requires a uts namespace of the container's own in linux.namespaces");
	if (cfg->domainname && !has_namespace(cfg, CLONE_NEWUTS))
		return bad(err, "domainname: requires a uts namespace of the container's own in linux.namespaces");
	if ((cfg->clone_flags & CLONE_NEWUSER) && !has_namespace(cfg, CLONE_NEWNS))
		return bad(err, "linux.namespaces: a new user namespace needs a mount namespace of the container's own "
			   "(new or joined): the kernel gives none to a chrooted process");
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
	if (asks_for_something(member(doc, "vm")))
		return bad(err, "vm: virtual-machine containers are not supported");
	if (parse_process(doc, cfg, err) < 0 || parse_root(doc, cfg, err) < 0 ||
	    get_string(doc, "hostname", "hostname", &cfg->hostname, err) < 0 ||
	    get_string(doc, "domainname", "domainname", &cfg->domainname, err) < 0 ||
	    parse_mounts(doc, cfg, err) < 0 || parse_linux(doc, cfg, err) < 0 ||
	    parse_hooks(doc, cfg, err) < 0 || parse_annotations(doc, cfg, err) < 0)
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
	free(cfg->devices);
	free(cfg->res.devices);
	for (int k = 0; k < HOOK_KIND_COUNT; k++)
		config_hook_list_free(&cfg->hooks[k]);
	free(cfg->args);
	free(cfg->env);
	if (cfg->doc)
		json_object_put(cfg->doc);
	memset(cfg, 0, sizeof(*cfg));
}

bool config_mounts_cgroup(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		if (!cfg->mounts[i].bind && strncmp(cfg->mounts[i].type, "cgroup", 6) == 0)
			return true;
	return false;
}

const char *config_getenv(const struct config *cfg, const char *name)
{
	size_t len = strlen(name);

	for (const char **e = cfg->env; e && *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}
