/* Device cgroup rules: the emulation of v1's semantics, and the v2 eBPF program against the
 * running kernel (a cgroup2 hierarchy at /sys/fs/cgroup or, in the hybrid layout, its
 * unified one), as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>

#include "check.h"
#include "devices.h"

#define ANY -1
#define RULE(allow, type, major, minor, access) { allow, type, major, minor, access }

static struct device_policy policy;

static void deny_all_then_allow(const void *arg)
{
	const struct device_rule rules[] = {
		RULE(false, 'a', ANY, ANY, "rwm"), RULE(true, 'c', 1, 3, "rwm"), RULE(true, 'c', ANY, ANY, "m"),
		RULE(true, 'b', 8, ANY, "r"),
	};

	(void)arg;
	devices_emulate(rules, 4, &policy);
	CHECK(!policy.default_allow && policy.n == 3);
	CHECK(devices_policy_allows(&policy, 'c', 1, 3, 'r') && devices_policy_allows(&policy, 'c', 1, 3, 'w'));
	CHECK(!devices_policy_allows(&policy, 'c', 1, 5, 'r'));
	CHECK(devices_policy_allows(&policy, 'c', 10, 200, 'm') && !devices_policy_allows(&policy, 'c', 10, 200, 'w'));
	CHECK(devices_policy_allows(&policy, 'b', 8, 16, 'r') && !devices_policy_allows(&policy, 'b', 8, 16, 'w'));
	CHECK(!devices_policy_allows(&policy, 'b', 9, 0, 'r'));
}

static void allow_all_then_deny(const void *arg)
{
	const struct device_rule rules[] = {
		RULE(true, 'a', ANY, ANY, "rwm"), RULE(false, 'c', 10, 200, "rw"),
	};

	(void)arg;
	devices_emulate(rules, 2, &policy);
	CHECK(policy.default_allow && policy.n == 1);
	CHECK(!devices_policy_allows(&policy, 'c', 10, 200, 'r'));
	CHECK(devices_policy_allows(&policy, 'c', 10, 200, 'm'));
	CHECK(devices_policy_allows(&policy, 'c', 1, 3, 'w'));
}

/* As the v1 kernel does: a deny takes access away from an exception for the same device only,
 * an "a" rule that is not everything means char and block alike, and a later "a" rule resets. */
static void kernel_semantics(const void *arg)
{
	const struct device_rule removes[] = {
		RULE(false, 'a', ANY, ANY, "rwm"), RULE(true, 'c', 1, 3, "rwm"), RULE(false, 'c', 1, 3, "w"),
		RULE(false, 'c', 1, ANY, "r"),
	};
	const struct device_rule partial_a[] = { RULE(false, 'a', ANY, ANY, "rwm"), RULE(true, 'a', 7, ANY, "r") };
	const struct device_rule reset[] = { RULE(false, 'a', ANY, ANY, "rwm"), RULE(true, 'c', 1, 3, "rwm"), RULE(true, 'a', ANY, ANY, "rwm") };

	(void)arg;
	devices_emulate(removes, 4, &policy);
	CHECK(policy.n == 1 && strcmp(policy.exceptions[0].access, "rm") == 0);
	CHECK(devices_policy_allows(&policy, 'c', 1, 3, 'r') && !devices_policy_allows(&policy, 'c', 1, 3, 'w'));
	devices_emulate(partial_a, 2, &policy);
	CHECK(policy.n == 2 && devices_policy_allows(&policy, 'b', 7, 1, 'r') && devices_policy_allows(&policy, 'c', 7, 1, 'r'));
	CHECK(!devices_policy_allows(&policy, 'c', 7, 1, 'w'));
	devices_emulate(reset, 3, &policy);
	CHECK(policy.default_allow && policy.n == 0);
}

/* The v2 cgroup hierarchy of this machine, or NULL. */
static const char *v2_mount(void)
{
	static const char *const candidates[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct statfs sf;

	for (size_t i = 0; i < 2; i++)
		if (statfs(candidates[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
			return candidates[i];
	return NULL;
}

/* In a child moved into dir: open each path; bit i of the exit status is set when path i opened. */
static int opens_in(const char *dir, const char *const *paths, size_t n)
{
	char procs[PATH_MAX];
	int status;
	pid_t pid;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	pid = fork();
	if (pid == 0) {
		int fd = open(procs, O_WRONLY), bits = 0;
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(255);
		close(fd);
		for (size_t i = 0; i < n; i++) {
			int d = open(paths[i], O_RDWR);
			if (d >= 0)
				bits |= 1 << i;
			close(d);
		}
		_exit(bits);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void v2_program(const void *arg)
{
	const struct device_rule rules[] = { RULE(false, 'a', ANY, ANY, "rwm"), RULE(true, 'c', 1, 3, "rw") };
	const char *const paths[] = { "/dev/null", "/dev/zero" };
	const char *mnt = arg;
	struct launch_error err = { 0 };
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/skiff-devices-test-%d", mnt, getpid());
	CHECK(mkdir(dir, 0755) == 0);
	CHECK(opens_in(dir, paths, 2) == 3); /* no program yet: both open */
	CHECK(devices_apply_v2(dir, rules, 2, &err) == 0);
	if (err.errnum)
		fprintf(stderr, "  devices_apply_v2: %s\n", strerror(err.errnum));
	CHECK(opens_in(dir, paths, 2) == 1); /* /dev/null only */
	CHECK(rmdir(dir) == 0);
}

void test_devices(void)
{
	const char *mnt = v2_mount();

	check_run("devices: deny all, then allow", deny_all_then_allow, NULL);
	check_run("devices: allow all, then deny", allow_all_then_deny, NULL);
	check_run("devices: the v1 kernel's semantics", kernel_semantics, NULL);
	if (geteuid() == 0 && mnt)
		check_run("devices: the v2 program on the running kernel", v2_program, mnt);
	else
		printf("skipped devices: the v2 program on the running kernel (needs root and a cgroup2 hierarchy)\n");
}
