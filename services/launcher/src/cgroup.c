#define _GNU_SOURCE
#include "cgroup.h"
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

static const char *const v1_names[CG_COUNT] = {
	"memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "net_cls",
	"net_prio", "perf_event", "hugetlb", "rdma", "misc", "systemd",
};
static bool fake_files;

void cgroup_fake_files(bool on)
{
	fake_files = on;
}

int cgroup_detect(const char *mnt, struct launch_error *err)
{
	struct statfs sf;

	if (statfs(mnt, &sf) < 0)
		return err_sys(err, "statfs cgroup root", mnt);
	return sf.f_type == CGROUP2_SUPER_MAGIC ? 2 : 1;
}

uint64_t cgroup_shares_to_weight(uint64_t shares)
{
	if (shares == 0)
		return 0;
	if (shares < 2)
		shares = 2;
	return 1 + ((shares - 2) * 9999) / 262142;
}

static int write_file(const char *dir, const char *file, const char *value,
		      struct launch_error *err)
{
	char path[PATH_MAX];
	_cleanup_fd_ int fd = -1;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return err_errno(err, ENAMETOOLONG, "write cgroup file", dir);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | (fake_files ? O_CREAT : 0), 0644);
	if (fd < 0 || write_all(fd, value, strlen(value)) < 0)
		return err_sys(err, "write cgroup file", path);
	return 0;
}

static int read_file(const char *dir, const char *file, char *buf, size_t len)
{
	char path[PATH_MAX];
	_cleanup_fd_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* "key N" line of a flat keyed file such as memory.events. */
static uint64_t keyed_value(const char *dir, const char *file, const char *key)
{
	char buf[4096], *p;
	size_t klen = strlen(key);

	if (read_file(dir, file, buf, sizeof(buf)) < 0)
		return 0;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
			return strtoull(p + klen + 1, NULL, 10);
	return 0;
}

/* No swap device at all (/proc/swaps has only its header line). */
static bool host_has_no_swap(void)
{
	char buf[256];
	_cleanup_fd_ int fd = open("/proc/swaps", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (n < 0)
		return false;
	buf[n] = '\0';
	return !strchr(buf, '\n') || !strchr(buf, '\n')[1];
}

/*
 * The swap limit. A kernel without swap accounting has no file for it; "unlimited" needs none,
 * a limit of no swap at all is still kept when the host has no swap to use, and any other is
 * refused (it would not be kept).
 */
static int write_swap(const char *dir, const char *file, const char *value, bool no_swap,
		      struct launch_error *err)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (!fake_files && access(path, F_OK) < 0 && errno == ENOENT) {
		if (strcmp(value, "-1") == 0 || strcmp(value, "max") == 0 || (no_swap && host_has_no_swap()))
			return 0; /* unlimited, or none where there is none */
		return err_msg(err, "config.json", NULL, "linux.resources.memory.swap: this kernel does not account swap "
			       "per cgroup (no %s), and the host has swap the container could use", file);
	}
	return write_file(dir, file, value, err);
}

static void fmt_i64(char *buf, size_t len, int64_t v, const char *unlimited)
{
	if (v < 0)
		snprintf(buf, len, "%s", unlimited);
	else
		snprintf(buf, len, "%" PRId64, v);
}

/*
 * mkdir -p below base; each component may already exist. One may also vanish meanwhile: the
 * worker removes a deleted function's empty cgroup, and a function of the same name may start
 * again at that moment. Then the next mkdir fails with ENOENT and the path is made anew.
 */
static int mkdir_p(const char *base, const char *path, char out[PATH_MAX],
		   struct launch_error *err)
{
	if (snprintf(out, PATH_MAX, "%s%s", base, path) >= PATH_MAX)
		return err_errno(err, ENAMETOOLONG, "create cgroup", path);
	for (int attempt = 0;; attempt++) {
		for (char *p = out + strlen(base) + 1;; p++) {
			if (*p != '/' && *p != '\0')
				continue;
			char saved = *p;
			*p = '\0';
			if (mkdir(out, 0755) < 0 && errno != EEXIST) {
				int e = errno;

				*p = saved;
				if (e == ENOENT && attempt < 3)
					break;
				*p = '\0';
				return err_errno(err, e, "create cgroup", out);
			}
			*p = saved;
			if (!saved)
				return 0;
		}
	}
}

static int leaf(const struct cgroup *cg, const char *sub, char out[PATH_MAX])
{
	if (sub)
		return snprintf(out, PATH_MAX, "%s/%s%s", cg->mnt, sub, cg->path) < PATH_MAX ? 0 : -1;
	return snprintf(out, PATH_MAX, "%s%s", cg->mnt, cg->path) < PATH_MAX ? 0 : -1;
}

const char *cgroup_v1_name(enum cg_controller c)
{
	return c < CG_COUNT ? v1_names[c] : NULL;
}

int cgroup_dir(const struct cgroup *cg, enum cg_controller c, char out[PATH_MAX])
{
	return leaf(cg, cg->version == 2 ? NULL : v1_names[c], out);
}

/* ---- v1 ---- */

/* A new v1 cpuset cgroup starts with empty cpus/mems; fill each level
 * from its parent, top down, or tasks cannot join it. */
static int v1_cpuset_inherit(const struct cgroup *cg, struct launch_error *err)
{
	char dir[PATH_MAX], parent[PATH_MAX], val[1024];
	const char *files[] = { "cpuset.cpus", "cpuset.mems" };

	snprintf(dir, sizeof(dir), "%s/cpuset", cg->mnt);
	for (const char *p = cg->path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		snprintf(parent, sizeof(parent), "%s", dir);
		snprintf(dir, sizeof(dir), "%s/cpuset%.*s", cg->mnt, (int)(p - cg->path), cg->path);
		for (int i = 0; i < 2; i++) {
			if (read_file(dir, files[i], val, sizeof(val)) == 0 && val[0] && val[0] != '\n')
				continue;
			if (read_file(parent, files[i], val, sizeof(val)) < 0)
				return err_sys(err, "read cgroup file", parent);
			if (write_file(dir, files[i], val, err) < 0)
				return -1;
		}
		if (!*p)
			return 0;
	}
}

static int v1_apply(const struct cgroup *cg, const struct resources *r, struct launch_error *err)
{
	char dir[PATH_MAX], v[32];

	if (cg->controllers & (1u << CG_MEMORY)) {
		leaf(cg, "memory", dir);
		fmt_i64(v, sizeof(v), r->memory_limit, "-1");
		if (r->has_memory && write_file(dir, "memory.limit_in_bytes", v, err) < 0)
			return -1;
		fmt_i64(v, sizeof(v), r->memory_swap, "-1");
		if (r->has_swap && write_swap(dir, "memory.memsw.limit_in_bytes", v,
					      r->has_memory && r->memory_swap == r->memory_limit, err) < 0)
			return -1;
		fmt_i64(v, sizeof(v), r->memory_reservation, "-1");
		if (r->has_reservation && write_file(dir, "memory.soft_limit_in_bytes", v, err) < 0)
			return -1;
		fmt_i64(v, sizeof(v), r->kernel_tcp, "-1");
		if (r->has_kernel_tcp && write_file(dir, "memory.kmem.tcp.limit_in_bytes", v, err) < 0)
			return -1;
		snprintf(v, sizeof(v), "%" PRIu64, r->swappiness);
		if (r->has_swappiness && write_file(dir, "memory.swappiness", v, err) < 0)
			return -1;
		if (r->disable_oom_killer && write_file(dir, "memory.oom_control", "1", err) < 0)
			return -1;
	}
	if (cg->controllers & (1u << CG_CPU)) {
		leaf(cg, "cpu", dir);
		snprintf(v, sizeof(v), "%" PRIu64, r->cpu_period);
		if (r->has_period && write_file(dir, "cpu.cfs_period_us", v, err) < 0)
			return -1;
		fmt_i64(v, sizeof(v), r->cpu_quota, "-1");
		if (r->has_quota && write_file(dir, "cpu.cfs_quota_us", v, err) < 0)
			return -1;
		snprintf(v, sizeof(v), "%" PRIu64, r->cpu_shares);
		if (r->has_shares && write_file(dir, "cpu.shares", v, err) < 0)
			return -1;
	}
	if (cg->controllers & (1u << CG_DEVICES)) {
		leaf(cg, "devices", dir);
		if (r->devices && devices_apply_v1(dir, r->devices, r->n_devices, err) < 0)
			return -1;
	}
	if (cg->controllers & (1u << CG_CPUSET)) {
		leaf(cg, "cpuset", dir);
		if (v1_cpuset_inherit(cg, err) < 0 ||
		    (r->cpus && write_file(dir, "cpuset.cpus", r->cpus, err) < 0) ||
		    (r->mems && write_file(dir, "cpuset.mems", r->mems, err) < 0))
			return -1;
	}
	if (cg->controllers & (1u << CG_PIDS)) {
		leaf(cg, "pids", dir);
		fmt_i64(v, sizeof(v), r->pids_limit <= 0 ? -1 : r->pids_limit, "max");
		if (r->has_pids && write_file(dir, "pids.max", v, err) < 0)
			return -1;
	}
	return 0;
}

/* The hierarchies to join: those the limits use, or every mounted one. Memory is always
 * joined (its OOM report), pids when mounted. */
static int v1_plan(struct cgroup *cg, const struct resources *r, bool all, struct launch_error *err)
{
	char base[PATH_MAX];
	unsigned needed = 1u << CG_MEMORY, wanted;

	if (r->has_pids)
		needed |= 1u << CG_PIDS;
	if (r->has_shares || r->has_quota || r->has_period)
		needed |= 1u << CG_CPU;
	if (r->cpus || r->mems)
		needed |= 1u << CG_CPUSET;
	if (r->devices)
		needed |= 1u << CG_DEVICES;
	wanted = all ? (1u << CG_COUNT) - 1 : needed | (1u << CG_PIDS);
	cg->controllers = 0;
	for (int c = 0; c < CG_COUNT; c++) {
		if (!(wanted & (1u << c)))
			continue;
		snprintf(base, sizeof(base), "%s/%s", cg->mnt, v1_names[c]);
		if (access(base, F_OK) == 0)
			cg->controllers |= 1u << c;
		else if (needed & (1u << c))
			return err_sys(err, "cgroup v1 controller not mounted at", base);
	}
	return 0;
}

static int v1_setup(const struct cgroup *cg, struct launch_error *err)
{
	char base[PATH_MAX], dir[PATH_MAX];

	for (int c = 0; c < CG_COUNT; c++) {
		if (!(cg->controllers & (1u << c)))
			continue;
		snprintf(base, sizeof(base), "%s/%s", cg->mnt, v1_names[c]);
		if (mkdir_p(base, cg->path, dir, err) < 0)
			return -1;
	}
	return v1_apply(cg, &cg->res, err);
}

/* ---- v2 ---- */

/* Controllers the limits need, as "+a +b" and as names to check. */
static void v2_needed(const struct resources *r, const char *names[4], size_t *n)
{
	*n = 0;
	if (r->has_memory || r->has_swap || r->has_reservation)
		names[(*n)++] = "memory";
	if (r->has_shares || r->has_quota || r->has_period)
		names[(*n)++] = "cpu";
	if (r->cpus || r->mems)
		names[(*n)++] = "cpuset";
	if (r->has_pids)
		names[(*n)++] = "pids";
}

static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || !p[len]))
			return true;
	return false;
}

/* Enable the needed controllers in every ancestor of the leaf. */
static int v2_enable(const struct cgroup *cg, const char *names[4], size_t n,
		     struct launch_error *err)
{
	char dir[PATH_MAX], avail[1024], enable[64] = "";

	for (size_t i = 0; i < n; i++)
		snprintf(enable + strlen(enable), sizeof(enable) - strlen(enable), "%s+%s",
			 i ? " " : "", names[i]);
	if (!n)
		return 0;
	for (const char *p = cg->path;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (!*p)
			return 0; /* the leaf itself keeps its controllers for its tasks */
		snprintf(dir, sizeof(dir), "%s%.*s", cg->mnt, (int)(p - cg->path), cg->path);
		if (read_file(dir, "cgroup.controllers", avail, sizeof(avail)) == 0)
			for (size_t i = 0; i < n; i++)
				if (!has_word(avail, names[i]))
					return err_msg(err, "cgroup v2", dir, "controller %s is not available (cgroup.controllers: %s)",
						       names[i], avail[0] ? strtok(avail, "\n") : "empty");
		if (write_file(dir, "cgroup.subtree_control", enable, err) < 0)
			return -1;
	}
}

static int v2_apply(const char *dir, const struct resources *r, struct launch_error *err)
{
	char v[64], q[32];

	fmt_i64(v, sizeof(v), r->memory_limit, "max");
	if (r->has_memory && write_file(dir, "memory.max", v, err) < 0)
		return -1;
	if (r->has_swap) {
		int64_t swap = r->memory_swap < 0 || !r->has_memory || r->memory_limit < 0
				       ? -1 : r->memory_swap - r->memory_limit;
		fmt_i64(v, sizeof(v), swap, "max");
		if (write_swap(dir, "memory.swap.max", v, swap == 0, err) < 0)
			return -1;
	}
	if (r->has_quota || r->has_period) {
		fmt_i64(q, sizeof(q), r->has_quota ? r->cpu_quota : -1, "max");
		snprintf(v, sizeof(v), "%s %" PRIu64, q, r->has_period ? r->cpu_period : 100000);
		if (write_file(dir, "cpu.max", v, err) < 0)
			return -1;
	}
	snprintf(v, sizeof(v), "%" PRIu64, cgroup_shares_to_weight(r->cpu_shares));
	if (r->has_shares && write_file(dir, "cpu.weight", v, err) < 0)
		return -1;
	if ((r->cpus && write_file(dir, "cpuset.cpus", r->cpus, err) < 0) ||
	    (r->mems && write_file(dir, "cpuset.mems", r->mems, err) < 0))
		return -1;
	fmt_i64(v, sizeof(v), r->pids_limit <= 0 ? -1 : r->pids_limit, "max");
	if (r->has_pids && write_file(dir, "pids.max", v, err) < 0)
		return -1;
	fmt_i64(v, sizeof(v), r->memory_reservation, "max");
	if (r->has_reservation && write_file(dir, "memory.low", v, err) < 0)
		return -1;
	if (r->devices && devices_apply_v2(dir, r->devices, r->n_devices, err) < 0)
		return -1;
	return 0;
}

/* What cgroup v2 has no file for is refused, naming the field; what memory.max already keeps
 * (socket memory is charged to it) is accepted. */
static int v2_check(const struct resources *r, struct launch_error *err)
{
	if (r->has_swappiness)
		return err_msg(err, "config.json", NULL, "linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness");
	if (r->disable_oom_killer)
		return err_msg(err, "config.json", NULL, "linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer");
	if (r->has_kernel_tcp && r->kernel_tcp != -1 &&
	    (!r->has_memory || r->memory_limit < 0 || r->kernel_tcp < r->memory_limit))
		return err_msg(err, "config.json", NULL, "linux.resources.memory.kernelTCP: cgroup v2 has no separate TCP "
			       "memory limit (socket memory counts in memory.limit, which keeps a larger one)");
	return 0;
}

static int v2_setup(const struct cgroup *cg, struct launch_error *err)
{
	const char *names[4];
	char dir[PATH_MAX];
	size_t n;

	v2_needed(&cg->res, names, &n);
	if (mkdir_p(cg->mnt, cg->path, dir, err) < 0 || v2_enable(cg, names, n, err) < 0)
		return -1;
	return v2_apply(dir, &cg->res, err);
}

/* ---- common ---- */

static int normalise_path(struct cgroup *cg, const char *path, struct launch_error *err)
{
	size_t o = 0;

	for (const char *p = path; *p; p++) {
		if (*p == '/' && (o == 0 ? false : cg->path[o - 1] == '/'))
			continue;
		if (o == 0 && *p != '/')
			cg->path[o++] = '/';
		if (o + 2 >= sizeof(cg->path))
			return err_errno(err, ENAMETOOLONG, "linux.cgroupsPath", path);
		cg->path[o++] = *p;
	}
	while (o > 1 && cg->path[o - 1] == '/')
		o--;
	cg->path[o] = '\0';
	if (o <= 1)
		return err_msg(err, "linux.cgroupsPath", path, "must name a cgroup below the root");
	return 0;
}

int cgroup_plan(struct cgroup *cg, const char *mnt, int version, const char *path,
		const struct resources *res, bool all_controllers, struct launch_error *err)
{
	memset(cg, 0, sizeof(*cg));
	snprintf(cg->mnt, sizeof(cg->mnt), "%s", mnt);
	if (normalise_path(cg, path, err) < 0)
		return -1;
	cg->version = version ? version : cgroup_detect(mnt, err);
	if (cg->version < 0)
		return -1;
	cg->res = *res;
	if (cg->version == 2)
		return v2_check(res, err);
	return v1_plan(cg, res, all_controllers, err);
}

int cgroup_setup(const struct cgroup *cg, struct launch_error *err)
{
	return cg->version == 2 ? v2_setup(cg, err) : v1_setup(cg, err);
}

int cgroup_create(struct cgroup *cg, const char *mnt, int version, const char *path,
		  const struct resources *res, struct launch_error *err)
{
	if (cgroup_plan(cg, mnt, version, path, res, false, err) < 0)
		return -1;
	return cgroup_setup(cg, err);
}

int cgroup_enter(const struct cgroup *cg, pid_t pid, struct launch_error *err)
{
	char dir[PATH_MAX], v[16];

	snprintf(v, sizeof(v), "%d", pid);
	if (cg->version == 2) {
		leaf(cg, NULL, dir);
		return write_file(dir, "cgroup.procs", v, err);
	}
	for (int c = 0; c < CG_COUNT; c++) {
		if (!(cg->controllers & (1u << c)))
			continue;
		leaf(cg, v1_names[c], dir);
		if (write_file(dir, "cgroup.procs", v, err) < 0)
			return -1;
	}
	return 0;
}

void cgroup_events(const struct cgroup *cg, uint64_t *oom_kills, uint64_t *pids_max_hits)
{
	char dir[PATH_MAX];

	*oom_kills = *pids_max_hits = 0;
	if (cg->version == 2) {
		leaf(cg, NULL, dir);
		*oom_kills = keyed_value(dir, "memory.events", "oom_kill");
		*pids_max_hits = keyed_value(dir, "pids.events", "max");
		return;
	}
	if (cg->controllers & (1u << CG_MEMORY)) {
		leaf(cg, "memory", dir);
		*oom_kills = keyed_value(dir, "memory.oom_control", "oom_kill");
	}
	if (cg->controllers & (1u << CG_PIDS)) {
		leaf(cg, "pids", dir);
		*pids_max_hits = keyed_value(dir, "pids.events", "max");
	}
}

/* Exiting tasks leave the cgroup a moment after their parent reaped them. */
static int rmdir_retry(const char *dir)
{
	struct timespec ts = { 0, 1000000 };

	for (int i = 0; i < 200; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -1;
		nanosleep(&ts, NULL);
	}
	return -1;
}

int cgroup_remove(const struct cgroup *cg)
{
	char dir[PATH_MAX];
	int rc = 0;

	if (cg->version == 2) {
		leaf(cg, NULL, dir);
		return rmdir_retry(dir);
	}
	for (int c = 0; c < CG_COUNT; c++) {
		if (!(cg->controllers & (1u << c)))
			continue;
		leaf(cg, v1_names[c], dir);
		if (rmdir_retry(dir) < 0)
			rc = -1;
	}
	return rc;
}
