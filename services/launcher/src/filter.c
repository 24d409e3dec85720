#define _GNU_SOURCE
#include "filter.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define bad(err, ...) err_msg(err, "config.json", NULL, __VA_ARGS__)
#define CACHE_MAGIC "SKBPF01"
#define MAX_INSNS 4096 /* BPF_MAXINSNS */

static struct json_object *member(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	if (obj && json_object_object_get_ex(obj, key, &v) && !json_object_is_type(v, json_type_null))
		return v;
	return NULL;
}

static int parse_action(const char *name, struct json_object *errno_ret, int default_errno,
			uint32_t *out)
{
	int e = errno_ret && json_object_is_type(errno_ret, json_type_int)
			? (int)json_object_get_int64(errno_ret) : default_errno;

	if (e < 0 || e > 4095)
		return -1;
	if (strcmp(name, "SCMP_ACT_ALLOW") == 0) *out = SCMP_ACT_ALLOW;
	else if (strcmp(name, "SCMP_ACT_ERRNO") == 0) *out = SCMP_ACT_ERRNO((uint32_t)e);
	else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
		*out = SCMP_ACT_KILL_THREAD;
	else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0) *out = SCMP_ACT_KILL_PROCESS;
	else if (strcmp(name, "SCMP_ACT_TRAP") == 0) *out = SCMP_ACT_TRAP;
	else if (strcmp(name, "SCMP_ACT_TRACE") == 0) *out = SCMP_ACT_TRACE((uint32_t)e);
	else if (strcmp(name, "SCMP_ACT_LOG") == 0) *out = SCMP_ACT_LOG;
	else return -1;
	return 0;
}

static int parse_op(const char *name, enum scmp_compare *out)
{
	static const struct { const char *name; enum scmp_compare op; } ops[] = {
		{ "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT },
		{ "SCMP_CMP_LE", SCMP_CMP_LE }, { "SCMP_CMP_EQ", SCMP_CMP_EQ },
		{ "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
		{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(ops[i].name, name) == 0) {
			*out = ops[i].op;
			return 0;
		}
	return -1;
}

static int add_arches(scmp_filter_ctx ctx, struct json_object *arr, struct launch_error *err)
{
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "linux.seccomp.architectures: must be an array of strings");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);
		const char *name = json_object_is_type(s, json_type_string) ? json_object_get_string(s) : "";
		char lower[32];
		uint32_t arch;
		size_t j;
		int rc;

		if (strncmp(name, "SCMP_ARCH_", 10) != 0 || strlen(name + 10) >= sizeof(lower))
			return bad(err, "linux.seccomp.architectures[%zu]: unknown architecture \"%s\"", i, name);
		for (j = 0; name[10 + j]; j++)
			lower[j] = (char)tolower((unsigned char)name[10 + j]);
		lower[j] = '\0';
		arch = seccomp_arch_resolve_name(lower);
		if (!arch)
			return bad(err, "linux.seccomp.architectures[%zu]: unknown architecture \"%s\"", i, name);
		rc = seccomp_arch_add(ctx, arch);
		if (rc < 0 && rc != -EEXIST)
			return err_errno(err, -rc, "seccomp add architecture", name);
	}
	return 0;
}

static int parse_args(struct json_object *arr, size_t idx, struct scmp_arg_cmp *conds,
		      unsigned *n, bool *repeated, struct launch_error *err)
{
	unsigned seen = 0;

	*n = 0;
	*repeated = false;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > 6)
		return bad(err, "linux.seccomp.syscalls[%zu].args: must be an array of at most 6 conditions", idx);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *a = json_object_array_get_idx(arr, i), *op = member(a, "op");
		struct json_object *index = member(a, "index"), *value = member(a, "value");
		struct json_object *two = member(a, "valueTwo");
		enum scmp_compare cmp;

		if (!index || !json_object_is_type(index, json_type_int) ||
		    json_object_get_int64(index) < 0 || json_object_get_int64(index) > 5 ||
		    !value || !json_object_is_type(value, json_type_int) ||
		    (two && !json_object_is_type(two, json_type_int)) ||
		    !op || !json_object_is_type(op, json_type_string) ||
		    parse_op(json_object_get_string(op), &cmp) < 0)
			return bad(err, "linux.seccomp.syscalls[%zu].args[%zu]: needs index 0-5, integer value(s) and a known SCMP_CMP_* op", idx, i);
		conds[i].arg = (unsigned)json_object_get_int64(index);
		conds[i].op = cmp;
		conds[i].datum_a = json_object_get_uint64(value);
		conds[i].datum_b = two ? json_object_get_uint64(two) : 0;
		if (seen & (1u << conds[i].arg))
			*repeated = true;
		seen |= 1u << conds[i].arg;
		*n = (unsigned)i + 1;
	}
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, struct scmp_arg_cmp *conds,
		    unsigned n, bool repeated, const char *name, struct launch_error *err)
{
	int rc;

	/* libseccomp takes one comparison per argument per rule; several on
	 * the same argument become alternatives, as runc does. */
	if (repeated) {
		for (unsigned i = 0; i < n; i++)
			if ((rc = seccomp_rule_add_array(ctx, action, nr, 1, &conds[i])) < 0)
				return err_errno(err, -rc, "seccomp rule for", name);
		return 0;
	}
	rc = seccomp_rule_add_array(ctx, action, nr, n, conds);
	if (rc < 0)
		return err_errno(err, -rc, "seccomp rule for", name);
	return 0;
}

static int add_syscall(scmp_filter_ctx ctx, struct json_object *o, size_t idx, uint32_t def,
		       int def_errno, struct launch_error *err)
{
	struct json_object *names = member(o, "names"), *action = member(o, "action");
	struct scmp_arg_cmp conds[6];
	unsigned n;
	bool repeated;
	uint32_t act;

	if (!json_object_is_type(o, json_type_object))
		return bad(err, "linux.seccomp.syscalls[%zu]: must be an object", idx);
	if (!names || !json_object_is_type(names, json_type_array))
		return bad(err, "linux.seccomp.syscalls[%zu].names: must be an array of strings", idx);
	if (!action || !json_object_is_type(action, json_type_string) ||
	    parse_action(json_object_get_string(action), member(o, "errnoRet"), def_errno, &act) < 0)
		return bad(err, "linux.seccomp.syscalls[%zu].action: unknown or unsupported action", idx);
	if (parse_args(member(o, "args"), idx, conds, &n, &repeated, err) < 0)
		return -1;
	if (act == def)
		return 0; /* libseccomp refuses rules that repeat the default */
	for (size_t i = 0; i < json_object_array_length(names); i++) {
		struct json_object *s = json_object_array_get_idx(names, i);
		int nr;
		if (!json_object_is_type(s, json_type_string))
			return bad(err, "linux.seccomp.syscalls[%zu].names[%zu]: must be a string", idx, i);
		nr = seccomp_syscall_resolve_name(json_object_get_string(s));
		if (nr == __NR_SCMP_ERROR)
			continue; /* unknown to this architecture or libseccomp: skip, as runc */
		if (add_rule(ctx, act, nr, conds, n, repeated, json_object_get_string(s), err) < 0)
			return -1;
	}
	return 0;
}

static int parse_flags(struct json_object *arr, unsigned *out, struct launch_error *err)
{
	*out = 0;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return bad(err, "linux.seccomp.flags: must be an array of strings");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *f = json_object_get_string(json_object_array_get_idx(arr, i));
		if (f && strcmp(f, "SECCOMP_FILTER_FLAG_TSYNC") == 0) *out |= SECCOMP_FILTER_FLAG_TSYNC;
		else if (f && strcmp(f, "SECCOMP_FILTER_FLAG_LOG") == 0) *out |= SECCOMP_FILTER_FLAG_LOG;
		else if (f && strcmp(f, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0) *out |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
		else return bad(err, "linux.seccomp.flags[%zu]: unknown flag", i);
	}
	return 0;
}

static int export_bpf(scmp_filter_ctx ctx, struct filter_prog *out, struct launch_error *err)
{
	_cleanup_fd_ int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	struct stat st;
	int rc;

	if (fd < 0)
		return err_sys(err, "memfd_create", "seccomp");
	if ((rc = seccomp_export_bpf(ctx, fd)) < 0)
		return err_errno(err, -rc, "seccomp export", NULL);
	if (fstat(fd, &st) < 0)
		return err_sys(err, "seccomp export", NULL);
	if (st.st_size == 0 || st.st_size % sizeof(struct sock_filter) ||
	    st.st_size / sizeof(struct sock_filter) > MAX_INSNS)
		return err_msg(err, "seccomp export", NULL, "filter has %lld bytes, too large or malformed",
			       (long long)st.st_size);
	out->filter = malloc((size_t)st.st_size);
	if (!out->filter)
		return err_sys(err, "allocate", "seccomp filter");
	if (pread(fd, out->filter, (size_t)st.st_size, 0) != st.st_size)
		return err_sys(err, "seccomp export", NULL);
	out->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	return 0;
}

int filter_compile(struct json_object *spec, struct filter_prog *out, struct launch_error *err)
{
	struct json_object *def = member(spec, "defaultAction"), *calls = member(spec, "syscalls");
	struct json_object *def_errno_obj = member(spec, "defaultErrnoRet");
	int def_errno = EPERM, rc = -1;
	scmp_filter_ctx ctx = NULL;
	uint32_t def_act;

	memset(out, 0, sizeof(*out));
	if (def_errno_obj && json_object_is_type(def_errno_obj, json_type_int))
		def_errno = (int)json_object_get_int64(def_errno_obj);
	if (!def || !json_object_is_type(def, json_type_string) ||
	    parse_action(json_object_get_string(def), def_errno_obj, EPERM, &def_act) < 0)
		return bad(err, "linux.seccomp.defaultAction: required, one of the SCMP_ACT_* actions");
	if (calls && !json_object_is_type(calls, json_type_array))
		return bad(err, "linux.seccomp.syscalls: must be an array");
	if (parse_flags(member(spec, "flags"), &out->flags, err) < 0)
		return -1;
	ctx = seccomp_init(def_act);
	if (!ctx)
		return err_msg(err, "seccomp_init", NULL, "failed");
	/* no_new_privs is the config's decision, not libseccomp's. A binary tree
	 * of syscall numbers instead of a list: the kernel walks the filter for
	 * every syscall number when it loads it, so a long allowlist costs about
	 * half a millisecond more per container as a list. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0 ||
	    add_arches(ctx, member(spec, "architectures"), err) < 0)
		goto out;
	for (size_t i = 0; calls && i < json_object_array_length(calls); i++)
		if (add_syscall(ctx, json_object_array_get_idx(calls, i), i, def_act, def_errno, err) < 0)
			goto out;
	rc = export_bpf(ctx, out, err);
out:
	seccomp_release(ctx);
	return rc;
}

/* ---- cache ---- */

struct cache_header {
	char magic[8];
	uint32_t key_len, flags, n_insns, reserved;
};

static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

/* The cache directory must be ours and private, or it is not used. */
static int open_cache_dir(const char *dir)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cache_read(int dirfd, const char *name, const char *key, size_t key_len,
		      struct filter_prog *out)
{
	_cleanup_fd_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	struct cache_header h;
	struct stat st;
	size_t want;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || (size_t)st.st_size < sizeof(h))
		return -1;
	if (pread(fd, &h, sizeof(h), 0) != sizeof(h) || memcmp(h.magic, CACHE_MAGIC, 8) != 0 ||
	    h.key_len != key_len || h.n_insns == 0 || h.n_insns > MAX_INSNS)
		return -1;
	want = sizeof(h) + key_len + h.n_insns * sizeof(struct sock_filter);
	if ((size_t)st.st_size != want || !(buf = malloc(want - sizeof(h))) ||
	    pread(fd, buf, want - sizeof(h), sizeof(h)) != (ssize_t)(want - sizeof(h)) ||
	    memcmp(buf, key, key_len) != 0)
		return -1;
	out->filter = malloc(h.n_insns * sizeof(struct sock_filter));
	if (!out->filter)
		return -1;
	memcpy(out->filter, buf + key_len, h.n_insns * sizeof(struct sock_filter));
	out->len = (unsigned short)h.n_insns;
	out->flags = h.flags;
	out->from_cache = true;
	return 0;
}

/* Best effort: a cache that cannot be written only costs speed. */
static void cache_write(int dirfd, const char *name, const char *key, size_t key_len,
			const struct filter_prog *p)
{
	struct cache_header h = { CACHE_MAGIC, (uint32_t)key_len, p->flags, p->len, 0 };
	char tmp[64];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", name, getpid());
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write_all(fd, &h, sizeof(h)) < 0 || write_all(fd, key, key_len) < 0 ||
	    write_all(fd, p->filter, p->len * sizeof(struct sock_filter)) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0)
		unlinkat(dirfd, tmp, 0);
	close(fd);
}

int filter_prepare(struct json_object *spec, const char *cache_dir, struct filter_prog *out,
		    struct launch_error *err)
{
	const char *json = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN);
	_cleanup_free_ char *key = NULL;
	_cleanup_fd_ int dirfd = -1;
	char name[40];
	size_t key_len;

	memset(out, 0, sizeof(*out));
	/* the BPF also depends on the libseccomp build, the native arch and how
	 * it is compiled ("tree": binary tree optimisation) */
	if (!cache_dir || asprintf(&key, "skiff-launch/%u.%u.%u/%u/tree\n%s", SCMP_VER_MAJOR, SCMP_VER_MINOR,
				   SCMP_VER_MICRO, seccomp_arch_native(), json) < 0)
		return filter_compile(spec, out, err);
	key_len = strlen(key);
	snprintf(name, sizeof(name), "%016llx.bpf", (unsigned long long)fnv1a(key, key_len));
	dirfd = open_cache_dir(cache_dir);
	if (dirfd >= 0 && cache_read(dirfd, name, key, key_len, out) == 0)
		return 0;
	filter_free(out);
	if (filter_compile(spec, out, err) < 0)
		return -1;
	if (dirfd >= 0)
		cache_write(dirfd, name, key, key_len, out);
	return 0;
}

int filter_load(const struct filter_prog *p, struct launch_error *err)
{
	struct sock_fprog prog = { p->len, p->filter };

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->flags, &prog) < 0)
		return err_sys(err, "load seccomp filter", NULL);
	return 0;
}

void filter_free(struct filter_prog *p)
{
	free(p->filter);
	memset(p, 0, sizeof(*p));
}
