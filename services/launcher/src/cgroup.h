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

enum cg_controller { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_CPUSET, CG_COUNT };

struct cgroup {
	int version;              /* 1 or 2 */
	char mnt[256];            /* e.g. /sys/fs/cgroup */
	char path[1024];          /* cgroupsPath, normalised to start with '/' */
	unsigned controllers;     /* v1: bit per enum cg_controller used */
	struct resources res;     /* what was applied, for the reports */
};

/* 1 or 2 from the filesystem type at mnt (cgroup2 magic means v2). */
int cgroup_detect(const char *mnt, struct launch_error *err);

/* Fill cg and create the cgroup with its limits. version 0 = detect. */
int cgroup_create(struct cgroup *cg, const char *mnt, int version, const char *path,
		  const struct resources *res, struct launch_error *err);
/* Move pid into the cgroup (every hierarchy on v1). */
int cgroup_enter(const struct cgroup *cg, pid_t pid, struct launch_error *err);
/* OOM kills and "pids.max reached" events so far (0 when unknown). */
void cgroup_events(const struct cgroup *cg, uint64_t *oom_kills, uint64_t *pids_max_hits);
/* rmdir the leaf (retrying while the last tasks exit); -1 if it stayed. */
int cgroup_remove(const struct cgroup *cg);

/* Value helpers, exposed for tests. */
uint64_t cgroup_shares_to_weight(uint64_t shares);
/* Create missing files when writing (fake trees in tests only). */
void cgroup_fake_files(bool on);

#endif
