/* cgroups for one container: v1 (one hierarchy per controller) and v2
 * (unified), chosen by what is mounted at the cgroup root. Every function
 * takes the mount root so tests can run against a fake tree. */
#ifndef SKIFF_CGROUP_H
#define SKIFF_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

/* v1 hierarchies by directory name under the cgroup root; the first ones are joined when
 * their limits are used, all of them when the container mounts its cgroups. */
enum cg_controller { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_CPUSET, CG_DEVICES, CG_FREEZER,
		     CG_BLKIO, CG_NET_CLS, CG_NET_PRIO, CG_PERF_EVENT, CG_HUGETLB, CG_RDMA, CG_MISC,
		     CG_SYSTEMD, CG_COUNT };

struct cgroup {
	int version;              /* 1 or 2 */
	char mnt[256];            /* e.g. /sys/fs/cgroup */
	char path[1024];          /* cgroupsPath, normalised to start with '/' */
	unsigned controllers;     /* v1: bit per enum cg_controller joined */
	struct resources res;     /* what is applied, for the reports (devices: borrowed) */
};

/* 1 or 2 from the filesystem type at mnt (cgroup2 magic means v2). */
int cgroup_detect(const char *mnt, struct launch_error *err);

/*
 * Decide, without creating anything, what the container's cgroup will be: the version
 * (0 = detect), the path, the v1 hierarchies to join (every mounted one with all_controllers).
 * Settings this cgroup version cannot honour are refused here, naming the field. Pure enough
 * to give the same answer in the launcher and in the container init.
 */
int cgroup_plan(struct cgroup *cg, const char *mnt, int version, const char *path,
		const struct resources *res, bool all_controllers, struct launch_error *err);
/* Create the planned cgroup and apply its limits. */
int cgroup_setup(const struct cgroup *cg, struct launch_error *err);
/* cgroup_plan (only the hierarchies the limits need) and cgroup_setup. */
int cgroup_create(struct cgroup *cg, const char *mnt, int version, const char *path,
		  const struct resources *res, struct launch_error *err);
/* Move pid into the cgroup (every hierarchy on v1). */
int cgroup_enter(const struct cgroup *cg, pid_t pid, struct launch_error *err);
/* OOM kills and "pids.max reached" events so far (0 when unknown). */
void cgroup_events(const struct cgroup *cg, uint64_t *oom_kills, uint64_t *pids_max_hits);
/* rmdir the leaf (retrying while the last tasks exit); -1 if it stayed. */
int cgroup_remove(const struct cgroup *cg);

/* Directory name of a v1 hierarchy ("memory"). */
const char *cgroup_v1_name(enum cg_controller c);
/* Host path of the container's cgroup: v1 in hierarchy c, v2 (c ignored). -1 if too long. */
int cgroup_dir(const struct cgroup *cg, enum cg_controller c, char out[PATH_MAX]);

/* Value helpers, exposed for tests. */
uint64_t cgroup_shares_to_weight(uint64_t shares);
/* Create missing files when writing (fake trees in tests only). */
void cgroup_fake_files(bool on);

#endif
