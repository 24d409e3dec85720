#define _GNU_SOURCE
#include "namespaces.h"

#include <net/if.h>
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
	{ "user", CLONE_NEWUSER, false }, /* needs id mappings: next round */
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
