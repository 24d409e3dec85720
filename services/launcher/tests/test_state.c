/* State files, signal names, seccomp compilation and its cache. */
#define _GNU_SOURCE
#include <dirent.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "filter.h"
#include "state.h"

static void state_round_trip(const void *arg)
{
	struct launch_error err = { 0 };
	struct state in = { 0 }, out;
	char dir[] = "/tmp/skiff-statetest-XXXXXX";

	(void)arg;
	CHECK(mkdtemp(dir) != NULL);
	strcpy(in.id, "fn-1");
	in.pid = getpid();
	in.start_time = proc_start_time(getpid());
	strcpy(in.bundle, "/b/with \"quotes\"");
	strcpy(in.created, "2025-01-01T00:00:00.000000000Z");
	in.has_cgroup = true;
	in.cgroup.version = 1;
	strcpy(in.cgroup.mnt, "/sys/fs/cgroup");
	strcpy(in.cgroup.path, "/skiff/fn/1");
	in.cgroup.controllers = 3;
	in.cgroup.res.has_memory = true;
	in.cgroup.res.memory_limit = 1 << 25;
	CHECK(state_write(dir, &in, &err) == 0);
	CHECK(state_read(dir, &out, &err) == 0);
	CHECK_STR(out.id, "fn-1");
	CHECK(out.pid == getpid() && out.start_time == in.start_time && out.start_time > 0);
	CHECK_STR(out.bundle, "/b/with \"quotes\"");
	CHECK(out.has_cgroup && out.cgroup.version == 1 && out.cgroup.controllers == 3);
	CHECK_STR(out.cgroup.path, "/skiff/fn/1");
	CHECK(out.cgroup.res.has_memory && out.cgroup.res.memory_limit == 1 << 25 && !out.cgroup.res.has_pids);
	CHECK_STR(state_status(dir, &out), "running");
	out.start_time++; /* a recycled pid */
	CHECK_STR(state_status(dir, &out), "stopped");
	CHECK(state_remove(dir) == 0);
	CHECK(access(dir, F_OK) != 0);
	CHECK(state_read(dir, &out, &err) < 0);
}

static void signals(const void *arg)
{
	(void)arg;
	CHECK(signal_parse("KILL") == SIGKILL);
	CHECK(signal_parse("SIGKILL") == SIGKILL);
	CHECK(signal_parse("sigterm") == SIGTERM);
	CHECK(signal_parse("9") == 9);
	CHECK(signal_parse("15") == SIGTERM);
	CHECK(signal_parse("USR1") == SIGUSR1);
	CHECK(signal_parse("RTMIN") == SIGRTMIN);
	CHECK(signal_parse("RTMIN+2") == SIGRTMIN + 2);
	CHECK(signal_parse("RTMAX-1") == SIGRTMAX - 1);
	CHECK(signal_parse("0") == -1);
	CHECK(signal_parse("65") == -1);
	CHECK(signal_parse("9x") == -1);
	CHECK(signal_parse("BOGUS") == -1);
	CHECK(signal_parse("") == -1);
	CHECK(signal_parse("RTMIN-1") == -1);
}

static const char profile[] =
	"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
	"\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\"],"
	"\"syscalls\":[{\"names\":[\"read\",\"write\",\"exit_group\",\"no_such_syscall\"],\"action\":\"SCMP_ACT_ALLOW\"},"
	"{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":2114060288,\"valueTwo\":0,\"op\":\"SCMP_CMP_MASKED_EQ\"}]},"
	"{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_EQ\"},{\"index\":0,\"value\":8,\"op\":\"SCMP_CMP_EQ\"}]},"
	"{\"names\":[\"clone3\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38}]}";

static void seccomp_compiles(const void *arg)
{
	struct launch_error err = { 0 };
	struct json_object *o = json_tokener_parse(profile);
	struct filter_prog p;

	(void)arg;
	CHECK(filter_compile(o, &p, &err) == 0);
	CHECK(p.len > 10 && p.filter != NULL && !p.from_cache);
	filter_free(&p);
	json_object_put(o);
}

struct bad_seccomp {
	const char *json, *message;
};

static const struct bad_seccomp bad_seccomps[] = {
	{ "{}", "linux.seccomp.defaultAction: required" },
	{ "{\"defaultAction\":\"SCMP_ACT_NOPE\"}", "linux.seccomp.defaultAction: required" },
	{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_PDP11\"]}", "linux.seccomp.architectures[0]: unknown architecture" },
	{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_WHATEVER\"}]}", "linux.seccomp.syscalls[0].action: unknown" },
	{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":\"read\",\"action\":\"SCMP_ACT_ERRNO\"}]}", "linux.seccomp.syscalls[0].names: must be an array" },
	{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":7,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}", "linux.seccomp.syscalls[0].args[0]: needs index 0-5" },
	{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_SIMILAR\"}]}]}", "linux.seccomp.syscalls[0].args[0]: needs index 0-5" },
	{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_MAGIC\"]}", "linux.seccomp.flags[0]: unknown flag" },
};

static void seccomp_rejects(const void *arg)
{
	const struct bad_seccomp *c = arg;
	struct launch_error err = { 0 };
	struct json_object *o = json_tokener_parse(c->json);
	struct filter_prog p;
	char msg[PATH_MAX + 512], want[256];

	CHECK(o != NULL);
	CHECK(filter_compile(o, &p, &err) < 0);
	err_format(&err, msg, sizeof(msg));
	snprintf(want, sizeof(want), "config.json: %s", c->message);
	if (strncmp(msg, want, strlen(want)) != 0)
		CHECK_STR(msg, want);
	filter_free(&p);
	json_object_put(o);
}

static void seccomp_cache(const void *arg)
{
	struct launch_error err = { 0 };
	struct json_object *o = json_tokener_parse(profile);
	struct filter_prog a, b, c;
	char dir[] = "/tmp/skiff-bpfcache-XXXXXX", cache[64], cmd[512];
	struct dirent *de;
	DIR *d;

	(void)arg;
	CHECK(mkdtemp(dir) != NULL);
	snprintf(cache, sizeof(cache), "%s/@seccomp", dir);
	CHECK(filter_prepare(o, cache, &a, &err) == 0 && !a.from_cache);
	CHECK(filter_prepare(o, cache, &b, &err) == 0 && b.from_cache);
	CHECK(a.len == b.len && memcmp(a.filter, b.filter, a.len * sizeof(*a.filter)) == 0);
	/* a tampered entry (size no longer matches) is ignored and rebuilt */
	d = opendir(cache);
	while (d && (de = readdir(d)))
		if (strstr(de->d_name, ".bpf")) {
			snprintf(cmd, sizeof(cmd), "printf x >> %s/%s", cache, de->d_name);
			CHECK(system(cmd) == 0);
		}
	if (d)
		closedir(d);
	CHECK(filter_prepare(o, cache, &c, &err) == 0 && !c.from_cache);
	filter_free(&c);
	/* a cache directory others can write to is not trusted */
	chmod(cache, 0777);
	CHECK(filter_prepare(o, cache, &c, &err) == 0 && !c.from_cache);
	filter_free(&a);
	filter_free(&b);
	filter_free(&c);
	json_object_put(o);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

void test_state(void)
{
	check_run("state: file round trip and status", state_round_trip, NULL);
	check_run("state: signal names and numbers", signals, NULL);
	check_run("seccomp: profile compiles", seccomp_compiles, NULL);
	for (size_t i = 0; i < sizeof(bad_seccomps) / sizeof(bad_seccomps[0]); i++) {
		char name[300];
		snprintf(name, sizeof(name), "seccomp: rejects (%s)", bad_seccomps[i].message);
		check_run(name, seccomp_rejects, &bad_seccomps[i]);
	}
	check_run("seccomp: BPF cache hit, tamper and permission checks", seccomp_cache, NULL);
}
