#define _GNU_SOURCE
#include "namespaces.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static const struct ns_type ns_types[] = {
	{ "pid", CLONE_NEWPID, true },
	{ "network", CLONE_NEWNET, true },
	{ "mount", CLONE_NEWNS, true },
	{ "ipc", CLONE_NEWIPC, true },
	{ "uts", CLONE_NEWUTS, true },
	{ "cgroup", CLONE_NEWCGROUP, true },
	{ "user", CLONE_NEWUSER, true },
	{ "time", CLONE_NEWTIME, false },
};

const struct ns_type *ns_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(ns_types) / sizeof(ns_types[0]); i++)
		if (strcmp(ns_types[i].name, name) == 0)
			return &ns_types[i];
	return NULL;
}

int ns_loopback_up(struct launch_error *err)
{
	_cleanup_fd_ int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;

	if (sock < 0)
		return err_sys(err, "socket for", "lo");
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	/* A new network namespace has only lo, down; flags are otherwise 0. */
	ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		return err_sys(err, "bring up interface", "lo");
	return 0;
}

static int open_sysctl(int dirfd, const char *key)
{
	struct open_how how = {
		.flags = O_WRONLY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	char rel[256];
	size_t i;

	for (i = 0; key[i] && i < sizeof(rel) - 1; i++)
		rel[i] = key[i] == '.' ? '/' : key[i];
	rel[i] = '\0';
	return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

int sysctls_apply(const struct config *cfg, struct launch_error *err)
{
	_cleanup_fd_ int dir = -1;
	struct statfs sf;

	if (!cfg->n_sysctls)
		return 0;
	dir = open("/proc/sys", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0 || fstatfs(dir, &sf) < 0)
		return err_sys(err, "open", "/proc/sys");
	if (sf.f_type != PROC_SUPER_MAGIC)
		return err_msg(err, "open", "/proc/sys", "not procfs");
	for (size_t i = 0; i < cfg->n_sysctls; i++) {
		_cleanup_fd_ int fd = open_sysctl(dir, cfg->sysctls[i].key);
		const char *v = cfg->sysctls[i].value;
		if (fd < 0 || write_all(fd, v, strlen(v)) < 0)
			return err_sys(err, "write sysctl", cfg->sysctls[i].key);
	}
	return 0;
}
