#define _GNU_SOURCE
#include "caps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

int cap_count(void)
{
	return (int)(sizeof(names) / sizeof(names[0]));
}

int cap_from_name(const char *name)
{
	for (int i = 0; i < cap_count(); i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

const char *cap_name(int n)
{
	return n >= 0 && n < cap_count() ? names[n] : NULL;
}

/* The running kernel's last capability; capabilities past it do not exist here. */
static int last_cap(void)
{
	static int cached = -1;
	char buf[16] = { 0 };
	int fd;

	if (cached >= 0)
		return cached;
	cached = CAP_LAST_CAP;
	fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) > 0)
			cached = atoi(buf);
		close(fd);
	}
	return cached;
}

int caps_drop_bounding(const uint64_t caps[CAP_SET_COUNT], struct launch_error *err)
{
	for (int c = 0; c <= last_cap(); c++) {
		if (c < 64 && (caps[CAP_SET_BOUNDING] >> c) & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return err_sys(err, "drop bounding capability", cap_name(c));
	}
	return 0;
}

static uint64_t current_permitted(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return ~0ULL; /* unknown: let capset decide */
	return (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
}

int caps_apply(const uint64_t caps[CAP_SET_COUNT], struct launch_error *err)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	uint64_t known = last_cap() >= 63 ? ~0ULL : (1ULL << (last_cap() + 1)) - 1;
	uint64_t eff = caps[CAP_SET_EFFECTIVE] & known, perm = caps[CAP_SET_PERMITTED] & known;
	uint64_t inh = caps[CAP_SET_INHERITABLE] & known, amb = caps[CAP_SET_AMBIENT] & known;

	uint64_t have = current_permitted();

	/* named, rather than capset's bare EPERM: the launcher cannot give what it does not hold */
	if (perm & ~have) {
		int c = __builtin_ctzll(perm & ~have);
		return err_msg(err, "capset", "process.capabilities", "%s is not in the launcher's own permitted set", cap_name(c));
	}
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(eff >> (32 * i));
		data[i].permitted = (uint32_t)(perm >> (32 * i));
		data[i].inheritable = (uint32_t)(inh >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return err_sys(err, "capset", "process.capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return err_sys(err, "clear ambient capabilities", NULL);
	for (int c = 0; c < 64; c++)
		if (((amb >> c) & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			return err_sys(err, "raise ambient capability", cap_name(c));
	return 0;
}
