/* cgroup v1 and v2 logic against fake cgroupfs trees (plain directories). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "check.h"

static void put(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX * 2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static char got_buf[512];
static const char *got(const char *dir, const char *file)
{
	char path[PATH_MAX * 2];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	n = fread(got_buf, 1, sizeof(got_buf) - 1, f);
	fclose(f);
	got_buf[n] = '\0';
	return got_buf;
}

static void fake_root(char *tmpl)
{
	strcpy(tmpl, "/tmp/skiff-cgtest-XXXXXX");
	if (!mkdtemp(tmpl))
		check_failures++;
}

static void rm_rf(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		check_failures++;
}

static struct resources limits(void)
{
	struct resources r = { 0 };

	r.has_memory = r.has_swap = r.has_quota = r.has_period = r.has_shares = r.has_pids = true;
	r.memory_limit = 33554432;
	r.memory_swap = 33554432;
	r.cpu_quota = 20000;
	r.cpu_period = 50000;
	r.cpu_shares = 1024;
	r.pids_limit = 32;
	return r;
}

static void v1_limits(const void *arg)
{
	struct launch_error err = { 0 };
	struct resources r = limits();
	struct cgroup cg;
	char root[64], sub[PATH_MAX];
	uint64_t oom, pids;

	(void)arg;
	fake_root(root);
	for (const char *const *c = (const char *const[]){ "memory", "pids", "cpu", "cpuacct", NULL }; *c; c++) {
		snprintf(sub, sizeof(sub), "%s/%s", root, *c);
		mkdir(sub, 0755);
	}
	cgroup_fake_files(true);
	CHECK(cgroup_create(&cg, root, 1, "skiff//fn/i1/", &r, &err) == 0);
	CHECK_STR(cg.path, "/skiff/fn/i1");
	CHECK(cg.controllers == ((1u << CG_MEMORY) | (1u << CG_PIDS) | (1u << CG_CPU)));
	snprintf(sub, sizeof(sub), "%s/memory/skiff/fn/i1", root);
	CHECK_STR(got(sub, "memory.limit_in_bytes"), "33554432");
	CHECK_STR(got(sub, "memory.memsw.limit_in_bytes"), "33554432");
	put(sub, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
	snprintf(sub, sizeof(sub), "%s/cpu/skiff/fn/i1", root);
	CHECK_STR(got(sub, "cpu.cfs_period_us"), "50000");
	CHECK_STR(got(sub, "cpu.cfs_quota_us"), "20000");
	CHECK_STR(got(sub, "cpu.shares"), "1024");
	snprintf(sub, sizeof(sub), "%s/pids/skiff/fn/i1", root);
	CHECK_STR(got(sub, "pids.max"), "32");
	put(sub, "pids.events", "max 7\n");
	CHECK(cgroup_enter(&cg, 4242, &err) == 0);
	CHECK_STR(got(sub, "cgroup.procs"), "4242");
	cgroup_events(&cg, &oom, &pids);
	CHECK(oom == 3 && pids == 7);
	snprintf(sub, sizeof(sub), "%s/cpuacct/skiff", root);
	CHECK(access(sub, F_OK) != 0); /* only the hierarchies in use */
	cgroup_fake_files(false);
	rm_rf(root);
}

static void v1_unlimited_and_missing(const void *arg)
{
	struct launch_error err = { 0 };
	struct resources r = { 0 };
	struct cgroup cg;
	char root[64], sub[PATH_MAX];

	(void)arg;
	fake_root(root);
	snprintf(sub, sizeof(sub), "%s/memory", root);
	mkdir(sub, 0755);
	cgroup_fake_files(true);
	r.has_memory = true;
	r.memory_limit = -1;
	CHECK(cgroup_create(&cg, root, 1, "/a", &r, &err) == 0);
	snprintf(sub, sizeof(sub), "%s/memory/a", root);
	CHECK_STR(got(sub, "memory.limit_in_bytes"), "-1");
	r.has_pids = true; /* pids requested but the hierarchy is not mounted */
	r.pids_limit = 10;
	CHECK(cgroup_create(&cg, root, 1, "/b", &r, &err) < 0);
	CHECK(strstr(err.op, "not mounted") != NULL);
	CHECK(cgroup_create(&cg, root, 1, "/", &r, &err) < 0);
	cgroup_fake_files(false);
	rm_rf(root);
}

static void v2_limits(const void *arg)
{
	struct launch_error err = { 0 };
	struct resources r = limits();
	struct cgroup cg;
	char root[64], sub[PATH_MAX];
	uint64_t oom, pids;

	(void)arg;
	fake_root(root);
	put(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	cgroup_fake_files(true);
	CHECK(cgroup_create(&cg, root, 2, "/skiff/fn/i1", &r, &err) == 0);
	CHECK_STR(got(root, "cgroup.subtree_control"), "+memory +cpu +pids");
	snprintf(sub, sizeof(sub), "%s/skiff/fn", root);
	CHECK_STR(got(sub, "cgroup.subtree_control"), "+memory +cpu +pids");
	snprintf(sub, sizeof(sub), "%s/skiff/fn/i1", root);
	CHECK(got(sub, "cgroup.subtree_control") == NULL); /* the leaf holds tasks */
	CHECK_STR(got(sub, "memory.max"), "33554432");
	CHECK_STR(got(sub, "memory.swap.max"), "0"); /* OCI swap counts memory + swap */
	CHECK_STR(got(sub, "cpu.max"), "20000 50000");
	CHECK_STR(got(sub, "cpu.weight"), "39");
	CHECK_STR(got(sub, "pids.max"), "32");
	CHECK(cgroup_enter(&cg, 99, &err) == 0);
	CHECK_STR(got(sub, "cgroup.procs"), "99");
	put(sub, "memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n");
	put(sub, "pids.events", "max 0\n");
	cgroup_events(&cg, &oom, &pids);
	CHECK(oom == 1 && pids == 0);
	cgroup_fake_files(false);
	rm_rf(root);
}

static void v2_unlimited_and_unavailable(const void *arg)
{
	struct launch_error err = { 0 };
	struct resources r = { 0 };
	struct cgroup cg;
	char root[64], sub[PATH_MAX], msg[PATH_MAX + 512];

	(void)arg;
	fake_root(root);
	put(root, "cgroup.controllers", "cpu io pids\n");
	cgroup_fake_files(true);
	r.has_quota = true;
	r.cpu_quota = -1;
	r.has_pids = true;
	r.pids_limit = 0;
	r.has_swap = true;
	r.memory_swap = -1;
	CHECK(cgroup_create(&cg, root, 2, "/x", &r, &err) < 0); /* swap needs memory */
	err_format(&err, msg, sizeof(msg));
	CHECK(strstr(msg, "controller memory is not available") != NULL);
	r.has_swap = false;
	CHECK(cgroup_create(&cg, root, 2, "/y", &r, &err) == 0);
	snprintf(sub, sizeof(sub), "%s/y", root);
	CHECK_STR(got(sub, "cpu.max"), "max 100000");
	CHECK_STR(got(sub, "pids.max"), "max");
	CHECK(cgroup_shares_to_weight(2) == 1 && cgroup_shares_to_weight(262144) == 10000);
	cgroup_fake_files(false);
	rm_rf(root);
}

/* What v2 has no file for is refused before anything is made; memory.low takes the reservation. */
static void v2_memory_settings(const void *arg)
{
	struct launch_error err = { 0 };
	struct resources r = { 0 };
	struct cgroup cg;
	char root[64], sub[PATH_MAX], msg[PATH_MAX + 512];

	(void)arg;
	fake_root(root);
	put(root, "cgroup.controllers", "cpu memory pids\n");
	cgroup_fake_files(true);
	r.has_memory = true;
	r.memory_limit = 1 << 20;
	r.has_swappiness = true;
	CHECK(cgroup_plan(&cg, root, 2, "/s", &r, false, &err) < 0);
	err_format(&err, msg, sizeof(msg));
	CHECK_STR(msg, "config.json: linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness");
	r.has_swappiness = false;
	r.disable_oom_killer = true;
	CHECK(cgroup_plan(&cg, root, 2, "/s", &r, false, &err) < 0);
	CHECK(strstr(err.detail, "disableOOMKiller") != NULL);
	r.disable_oom_killer = false;
	r.has_kernel_tcp = true;
	r.kernel_tcp = 1 << 19; /* below memory.limit: nothing could keep it */
	CHECK(cgroup_plan(&cg, root, 2, "/s", &r, false, &err) < 0);
	CHECK(strstr(err.detail, "kernelTCP") != NULL);
	snprintf(sub, sizeof(sub), "%s/s", root);
	CHECK(access(sub, F_OK) != 0); /* refused before anything was made */
	r.kernel_tcp = 1 << 20; /* memory.max keeps it */
	r.has_reservation = true;
	r.memory_reservation = 1 << 19;
	CHECK(cgroup_create(&cg, root, 2, "/s", &r, &err) == 0);
	CHECK_STR(got(sub, "memory.low"), "524288");
	CHECK_STR(got(sub, "memory.max"), "1048576");
	cgroup_fake_files(false);
	rm_rf(root);
}

/* A cgroup mount joins every mounted v1 hierarchy; limits alone join only what they use. */
static void v1_all_hierarchies(const void *arg)
{
	struct launch_error err = { 0 };
	struct resources r = { 0 };
	struct cgroup cg;
	char root[64], sub[PATH_MAX];

	(void)arg;
	fake_root(root);
	for (const char *const *c = (const char *const[]){ "memory", "pids", "devices", "freezer", "systemd", NULL }; *c; c++) {
		snprintf(sub, sizeof(sub), "%s/%s", root, *c);
		mkdir(sub, 0755);
	}
	CHECK(cgroup_plan(&cg, root, 1, "/a", &r, false, &err) == 0);
	CHECK(cg.controllers == ((1u << CG_MEMORY) | (1u << CG_PIDS)));
	CHECK(cgroup_plan(&cg, root, 1, "/a", &r, true, &err) == 0);
	CHECK(cg.controllers == ((1u << CG_MEMORY) | (1u << CG_PIDS) | (1u << CG_DEVICES) | (1u << CG_FREEZER) | (1u << CG_SYSTEMD)));
	r.cpus = "0"; /* a limit of an unmounted hierarchy is an error, all or not */
	CHECK(cgroup_plan(&cg, root, 1, "/a", &r, true, &err) < 0);
	CHECK(strstr(err.op, "not mounted") != NULL);
	rm_rf(root);
}

static void detect(const void *arg)
{
	struct launch_error err = { 0 };

	(void)arg;
	CHECK(cgroup_detect("/tmp", &err) == 1);
	if (access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) == 0)
		CHECK(cgroup_detect("/sys/fs/cgroup/unified", &err) == 2);
	CHECK(cgroup_detect("/nonexistent-skiff", &err) < 0);
}

void test_cgroup(void)
{
	check_run("cgroup: v1 limits, enter, events", v1_limits, NULL);
	check_run("cgroup: v1 unlimited values and missing hierarchies", v1_unlimited_and_missing, NULL);
	check_run("cgroup: v2 controllers, limits, enter, events", v2_limits, NULL);
	check_run("cgroup: v2 unlimited values and unavailable controllers", v2_unlimited_and_unavailable, NULL);
	check_run("cgroup: v2 memory settings refused or applied", v2_memory_settings, NULL);
	check_run("cgroup: v1 hierarchies joined for limits and for a cgroup mount", v1_all_hierarchies, NULL);
	check_run("cgroup: version detection", detect, NULL);
}
