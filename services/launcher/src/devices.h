/* linux.resources.devices: the device cgroup. v1 takes the rules one by one in devices.allow
 * and devices.deny; v2 has no files for it, only an eBPF program attached to the cgroup, built
 * here from the same rules so that both behave as the v1 kernel does. */
#ifndef SKIFF_DEVICES_H
#define SKIFF_DEVICES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Write the rules, in order, into the v1 devices cgroup at dir. */
int devices_apply_v1(const char *dir, const struct device_rule *rules, size_t n, struct launch_error *err);
/* Load the rules as a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to the v2 cgroup at dir. */
int devices_apply_v2(const char *dir, const struct device_rule *rules, size_t n, struct launch_error *err);

/* What the v1 kernel makes of the rules applied in order: a default and exceptions to it. */
struct device_policy {
	bool default_allow;
	struct device_rule exceptions[MAX_DEVICE_RULES * 2 + 32];
	size_t n;
};
void devices_emulate(const struct device_rule *rules, size_t n, struct device_policy *out);
/* Whether the policy lets a process open (r/w) or mknod (m) device type/major/minor (tests). */
bool devices_policy_allows(const struct device_policy *p, char type, unsigned major, unsigned minor, char access);

#endif
