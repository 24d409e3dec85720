#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "check.h"
#include "config.h"

static const char good[] =
	"{\"ociVersion\":\"1.0.2\","
	" \"process\":{\"args\":[\"sh\",\"-c\",\"true\"],\"env\":[\"PATH=/bin\",\"A=b\"],"
	"  \"cwd\":\"/work\",\"noNewPrivileges\":true,"
	"  \"user\":{\"uid\":1000,\"gid\":100,\"additionalGids\":[5,6]},"
	"  \"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":512}]},"
	" \"root\":{\"path\":\"rootfs\",\"readonly\":true},"
	" \"hostname\":\"fn\","
	" \"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	"  {\"destination\":\"/tmp\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
	"   \"options\":[\"nosuid\",\"nodev\",\"mode=1777\",\"size=65536k\",\"strictatime\"]},"
	"  {\"destination\":\"/data\",\"source\":\"/srv\",\"options\":[\"rbind\",\"ro\",\"rslave\"]}],"
	" \"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"mount\"},"
	"  {\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"cgroup\"}]}}";

static void good_config(const void *arg)
{
	struct launch_error err = { 0 };
	struct config cfg;

	(void)arg;
	CHECK(config_parse(good, &cfg, &err) == 0);
	CHECK_STR(cfg.args[0], "sh");
	CHECK_STR(cfg.args[2], "true");
	CHECK(cfg.args[3] == NULL);
	CHECK_STR(config_getenv(&cfg, "PATH"), "/bin");
	CHECK(config_getenv(&cfg, "PAT") == NULL);
	CHECK_STR(cfg.cwd, "/work");
	CHECK(cfg.uid == 1000 && cfg.gid == 100);
	CHECK(cfg.n_additional_gids == 2 && cfg.additional_gids[1] == 6);
	CHECK(cfg.no_new_privileges);
	CHECK(cfg.n_rlimits == 1 && cfg.rlimits[0].resource == RLIMIT_NOFILE);
	CHECK(cfg.rlimits[0].limit.rlim_cur == 512 && cfg.rlimits[0].limit.rlim_max == 1024);
	CHECK_STR(cfg.root_path, "rootfs");
	CHECK(cfg.root_readonly);
	CHECK_STR(cfg.hostname, "fn");
	CHECK(cfg.n_mounts == 3);
	CHECK(cfg.mounts[0].flags == 0 && cfg.mounts[0].data == NULL && !cfg.mounts[0].bind);
	CHECK(cfg.mounts[1].flags == (MS_NOSUID | MS_NODEV | MS_STRICTATIME));
	CHECK_STR(cfg.mounts[1].data, "mode=1777,size=65536k");
	CHECK(cfg.mounts[2].bind && cfg.mounts[2].type == NULL);
	CHECK(cfg.mounts[2].flags == (MS_REC | MS_RDONLY));
	CHECK(cfg.mounts[2].propagation == (MS_SLAVE | MS_REC));
	CHECK(cfg.clone_flags == (CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC |
				  CLONE_NEWUTS | CLONE_NEWCGROUP));
	CHECK(cfg.rootfs_propagation == (MS_PRIVATE | MS_REC));
	config_free(&cfg);
}

#define BASE_NS "\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}"
#define BASE_ROOT "\"root\":{\"path\":\"r\"}"
#define BASE_PROC "\"process\":{\"args\":[\"sh\"]}"
#define DOC(...) "{\"ociVersion\":\"1.0.0\"," __VA_ARGS__ "}"

static void minimal_defaults(const void *arg)
{
	struct launch_error err = { 0 };
	struct config cfg;

	(void)arg;
	CHECK(config_parse(DOC(BASE_PROC "," BASE_ROOT "," BASE_NS), &cfg, &err) == 0);
	CHECK_STR(cfg.cwd, "/");
	CHECK(cfg.env && cfg.env[0] == NULL);
	CHECK(cfg.uid == 0 && cfg.n_additional_gids == 0 && !cfg.root_readonly);
	CHECK(cfg.hostname == NULL && cfg.n_mounts == 0);
	config_free(&cfg);
	/* no process at all: a container may be created, not started (see run.c, lifecycle.c) */
	CHECK(config_parse(DOC(BASE_ROOT "," BASE_NS), &cfg, &err) == 0);
	CHECK(cfg.args == NULL);
	CHECK_STR(cfg.cwd, "/");
	config_free(&cfg);
}

struct bad_case {
	const char *json;
	const char *message; /* expected text after "config.json: " */
};

static const struct bad_case bad_cases[] = {
	{ "{", "invalid JSON" },
	{ "[]", "top level: must be an object" },
	{ "{\"process\":{\"args\":[\"sh\"]}}", "ociVersion: must be a 1.x version string" },
	{ DOC("\"process\":{}," BASE_ROOT "," BASE_NS), "process.args: must be a non-empty array of strings" },
	{ DOC("\"process\":{\"args\":[]}," BASE_ROOT "," BASE_NS), "process.args: must be a non-empty array of strings" },
	{ DOC("\"process\":{\"args\":\"sh\"}," BASE_ROOT "," BASE_NS), "process.args: must be a non-empty array of strings" },
	{ DOC("\"process\":{\"args\":[\"sh\",1]}," BASE_ROOT "," BASE_NS), "process.args[1]: must be a string" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"env\":[3]}," BASE_ROOT "," BASE_NS), "process.env[0]: must be a string" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"cwd\":\"tmp\"}," BASE_ROOT "," BASE_NS), "process.cwd: must be an absolute path" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"cwd\":7}," BASE_ROOT "," BASE_NS), "process.cwd: must be a string" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"user\":{\"uid\":-1}}," BASE_ROOT "," BASE_NS), "process.user.uid: must be an integer from 0 to 4294967294" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"user\":{\"gid\":\"0\"}}," BASE_ROOT "," BASE_NS), "process.user.gid: must be an integer from 0 to 4294967294" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"user\":{\"additionalGids\":[1,\"x\"]}}," BASE_ROOT "," BASE_NS), "process.user.additionalGids[1]: must be an integer from 0 to 4294967294" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"noNewPrivileges\":1}," BASE_ROOT "," BASE_NS), "process.noNewPrivileges: must be a boolean" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"terminal\":true}," BASE_ROOT "," BASE_NS), "process.terminal: a terminal is not supported yet" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"rlimits\":[{\"type\":\"RLIMIT_BOGUS\",\"hard\":1,\"soft\":1}]}," BASE_ROOT "," BASE_NS), "process.rlimits[0].type: must be a known RLIMIT_* name" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1,\"soft\":2}]}," BASE_ROOT "," BASE_NS), "process.rlimits[0]: soft exceeds hard" },
	{ DOC(BASE_PROC "," BASE_NS), "root.path: required" },
	{ DOC(BASE_PROC ",\"root\":{\"path\":\"r\",\"readonly\":\"yes\"}," BASE_NS), "root.readonly: must be a boolean" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"hostname\":5," BASE_NS), "hostname: must be a string" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"hostname\":\"h\"," BASE_NS), "hostname: requires a uts namespace of the container's own in linux.namespaces" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"domainname\":\"d\"," BASE_NS), "domainname: requires a uts namespace of the container's own" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":{}," BASE_NS), "mounts: must be an array" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"type\":\"proc\"}]," BASE_NS), "mounts[0].destination: required" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"destination\":\"/x\"}]," BASE_NS), "mounts[0].type: required unless options contain bind or rbind" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"bind\"}]," BASE_NS), "mounts[0].source: required for a bind mount" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"tmpfs\",\"options\":[1]}]," BASE_NS), "mounts[0].options[0]: must be a string" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"destination\":\"/x\",\"source\":\"/y\",\"options\":[\"bind\"],\"uidMappings\":[{\"containerID\":0,\"hostID\":1,\"size\":1}]}]," BASE_NS), "mounts[0]: idmapped mounts (uidMappings, gidMappings) are not supported yet" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"apparmorProfile\":\"docker-default\"}," BASE_ROOT "," BASE_NS), "process.apparmorProfile: AppArmor is not supported by skiff-launch; refused rather than run unconfined" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"selinuxLabel\":\"system_u:system_r:svirt_lxc_net_t:s0\"}," BASE_ROOT "," BASE_NS), "process.selinuxLabel: SELinux is not supported" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"ioPriority\":{\"class\":\"IOPRIO_CLASS_IDLE\"}}," BASE_ROOT "," BASE_NS), "process.ioPriority: not supported yet" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"user\":{\"umask\":512}}," BASE_ROOT "," BASE_NS), "process.user.umask: must be an integer from 0 to 0777" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"mountLabel\":\"system_u:object_r:svirt_sandbox_file_t:s0\"}"), "linux.mountLabel: SELinux is not supported" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"intelRdt\":{\"closID\":\"a\"}}"), "linux.intelRdt: Intel RDT is not supported" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"personality\":{\"domain\":\"LINUX\",\"flags\":[\"ADDR_NO_RANDOMIZE\"]}}"), "linux.personality.flags: no personality flags are supported" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/run/l.sock\"}}"), "linux.seccomp.listenerPath: seccomp notification" },
	{ DOC(BASE_PROC "," BASE_ROOT "," BASE_NS ",\"vm\":{\"hypervisor\":{\"path\":\"/q\"}}"), "vm: virtual-machine containers are not supported" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"bogus\"}]}"), "linux.namespaces[1].type: unknown namespace type \"bogus\"" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"time\"}]}"), "linux.namespaces[1].type: time namespaces are not supported yet" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"user\"}]}"), "linux.uidMappings/gidMappings: required with a new user namespace" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"network\",\"path\":\"run/netns/x\"}]}"), "linux.namespaces[1].path: must be an absolute path" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"network\",\"path\":\"/a\"},{\"type\":\"network\"}]}"), "linux.namespaces[2].type: duplicate network namespace" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"user\":{\"uid\":70000}}," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"user\"}],\"uidMappings\":[{\"containerID\":0,\"hostID\":1000000,\"size\":65536}],\"gidMappings\":[{\"containerID\":0,\"hostID\":1000000,\"size\":65536}]}"), "process.user.uid: 70000 is not mapped by linux.uidMappings" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"user\"}],\"uidMappings\":[{\"containerID\":0,\"hostID\":1000000,\"size\":0}]}"), "linux.uidMappings[0]: needs integer containerID, hostID and a non-zero size within 32 bits" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"uidMappings\":[{\"containerID\":0,\"hostID\":1,\"size\":1}]}"), "linux.uidMappings: require a new user namespace in linux.namespaces" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"capabilities\":{\"bounding\":[\"CAP_BOGUS\"]}}," BASE_ROOT "," BASE_NS), "process.capabilities.bounding[0]: unknown capability \"CAP_BOGUS\"" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"capabilities\":{\"ambient\":\"CAP_KILL\"}}," BASE_ROOT "," BASE_NS), "process.capabilities.ambient: must be an array of strings" },
	{ DOC("\"process\":{\"args\":[\"sh\"],\"oomScoreAdj\":1001}," BASE_ROOT "," BASE_NS), "process.oomScoreAdj: must be an integer from -1000 to 1000" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"blockIO\":{\"weight\":10}}}"), "linux.resources.blockIO: not supported" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"memory\":{\"limit\":1048576,\"kernel\":65536}}}"), "linux.resources.memory.kernel: a kernel memory limit below memory.limit is not enforced" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"memory\":{\"kernel\":65536}}}"), "linux.resources.memory.kernel: a kernel memory limit below memory.limit is not enforced" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"memory\":{\"swappiness\":101}}}"), "linux.resources.memory.swappiness: must be from 0 to 100" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"memory\":{\"useHierarchy\":false}}}"), "linux.resources.memory.useHierarchy: false is not supported" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"memory\":{\"checkBeforeUpdate\":true}}}"), "linux.resources.memory.checkBeforeUpdate: not supported by skiff-launch" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"cpu\":{\"realtimeRuntime\":1000}}}"), "linux.resources.cpu.realtimeRuntime: not supported by skiff-launch" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"devices\":[{\"allow\":true,\"access\":\"rwx\"}]}}"), "linux.resources.devices[0].access: must be made of r, w and m" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"devices\":[{\"access\":\"r\"}]}}"), "linux.resources.devices[0].allow: required boolean" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"memory\":{\"limit\":\"1g\"}}}"), "linux.resources.memory.limit: must be an integer" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"memory\":{\"limit\":1048576,\"swap\":4096}}}"), "linux.resources.memory.swap: must be -1 or at least memory.limit" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"cpu\":{\"period\":10}}}"), "linux.resources.cpu.period: must be from 1000 to 1000000 microseconds" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"resources\":{\"cpu\":{\"cpus\":\"0;1\"}}}"), "linux.resources.cpu.cpus: must be a CPU list" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"cgroupsPath\":\"/a/../../b\"}"), "linux.cgroupsPath: must be a path without \"..\"" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"maskedPaths\":[\"proc/kcore\"]}"), "linux.maskedPaths[0]: must be an absolute path" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"sysctl\":{\"kernel.panic\":\"1\"}}"), "linux.sysctl.kernel.panic: not a namespaced sysctl, refused" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"}}"), "linux.sysctl.net.ipv4.ip_forward: requires a new network namespace" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"devices\":[{\"path\":\"/dev/sda\",\"type\":\"b\"}]}"), "linux.devices[0]: major and minor numbers are required for a device" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"devices\":[{\"path\":\"/etc/x\",\"type\":\"c\",\"major\":1,\"minor\":3}]}"), "linux.devices[0].path: must be a path below /dev/" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"devices\":[{\"path\":\"/dev/../etc/x\",\"type\":\"c\",\"major\":1,\"minor\":3}]}"), "linux.devices[0].path: must be a path below /dev/" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"devices\":[{\"path\":\"/dev/x\",\"type\":\"c\",\"major\":1,\"minor\":3,\"fileMode\":2559}]}"), "linux.devices[0].fileMode: must be permission bits" },
	{ DOC(BASE_PROC "," BASE_ROOT "," BASE_NS ",\"hooks\":{\"prestop\":[{\"path\":\"/bin/true\"}]}"), "hooks.prestop: not supported by skiff-launch" },
	{ DOC(BASE_PROC "," BASE_ROOT "," BASE_NS ",\"hooks\":{\"prestart\":[{\"path\":\"bin/true\"}]}"), "hooks.prestart[0].path: required, an absolute path" },
	{ DOC(BASE_PROC "," BASE_ROOT "," BASE_NS ",\"hooks\":{\"poststop\":[{\"path\":\"/bin/true\",\"timeout\":0}]}"), "hooks.poststop[0].timeout: must be a number of seconds from 1 to 86400" },
	{ DOC(BASE_PROC "," BASE_ROOT "," BASE_NS ",\"annotations\":{\"a\":1}"), "annotations.a: must be a string" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"mount\"}]}"), "linux.namespaces[1].type: duplicate mount namespace" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"rootfsPropagation\":\"sideways\",\"namespaces\":[{\"type\":\"mount\"}]}"), "linux.rootfsPropagation: unknown mode \"sideways\"" },
};

static void bad_config(const void *arg)
{
	const struct bad_case *c = arg;
	struct launch_error err = { 0 };
	char msg[PATH_MAX + 512], want[512];
	struct config cfg;

	CHECK(config_parse(c->json, &cfg, &err) < 0);
	err_format(&err, msg, sizeof(msg));
	snprintf(want, sizeof(want), "config.json: %s", c->message);
	if (strncmp(msg, want, strlen(want)) != 0)
		CHECK_STR(msg, want);
	CHECK(err.exit_code == EXIT_LAUNCH_FAILED);
	config_free(&cfg);
}

static const char full[] =
	"{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"oomScoreAdj\":500,"
	" \"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],\"effective\":[\"CAP_KILL\"],"
	"  \"inheritable\":[],\"permitted\":[\"CAP_KILL\"],\"ambient\":[]}},"
	" \"root\":{\"path\":\"r\"},"
	" \"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"user\"},{\"type\":\"ipc\"},"
	"   {\"type\":\"network\",\"path\":\"/run/netns/a\"}],"
	"  \"uidMappings\":[{\"containerID\":0,\"hostID\":1065536,\"size\":65536}],"
	"  \"gidMappings\":[{\"containerID\":0,\"hostID\":1065536,\"size\":65536}],"
	"  \"cgroupsPath\":\"/skiff/fn/i1\","
	"  \"resources\":{\"memory\":{\"limit\":33554432,\"swap\":33554432},"
	"   \"cpu\":{\"shares\":512,\"quota\":20000,\"period\":100000,\"cpus\":\"0-1\"},"
	"   \"pids\":{\"limit\":32},\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
	"  \"seccomp\":{\"defaultAction\":\"SCMP_ACT_ERRNO\"},"
	"  \"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\",\"/proc/bus\"],"
	"  \"sysctl\":{\"kernel.shmmni\":\"100\"}}}";

static void full_config(const void *arg)
{
	struct launch_error err = { 0 };
	struct config cfg;

	(void)arg;
	CHECK(config_parse(full, &cfg, &err) == 0);
	CHECK(cfg.has_oom_score_adj && cfg.oom_score_adj == 500);
	CHECK(cfg.caps[CAP_SET_BOUNDING] == ((1ULL << 5) | (1ULL << 10)));
	CHECK(cfg.caps[CAP_SET_EFFECTIVE] == (1ULL << 5) && cfg.caps[CAP_SET_AMBIENT] == 0);
	CHECK(cfg.clone_flags == (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWIPC));
	CHECK(cfg.n_joins == 1 && cfg.joins[0].flag == CLONE_NEWNET);
	CHECK_STR(cfg.joins[0].path, "/run/netns/a");
	CHECK(cfg.n_uid_maps == 1 && cfg.uid_maps[0].host_id == 1065536 && cfg.uid_maps[0].size == 65536);
	CHECK(config_map_id(cfg.uid_maps, cfg.n_uid_maps, 0) == 1065536);
	CHECK(config_map_id(cfg.uid_maps, cfg.n_uid_maps, 65535) == 1065536 + 65535);
	CHECK(config_map_id(cfg.uid_maps, cfg.n_uid_maps, 65536) == -1);
	CHECK_STR(cfg.cgroups_path, "/skiff/fn/i1");
	CHECK(cfg.has_resources && cfg.res.memory_limit == 33554432 && cfg.res.memory_swap == 33554432);
	CHECK(cfg.res.cpu_shares == 512 && cfg.res.cpu_quota == 20000 && cfg.res.cpu_period == 100000);
	CHECK_STR(cfg.res.cpus, "0-1");
	CHECK(cfg.res.has_pids && cfg.res.pids_limit == 32);
	CHECK(cfg.seccomp != NULL);
	CHECK_STR(cfg.masked_paths[0], "/proc/kcore");
	CHECK(cfg.masked_paths[1] == NULL);
	CHECK_STR(cfg.readonly_paths[1], "/proc/bus");
	CHECK(cfg.n_sysctls == 1);
	CHECK_STR(cfg.sysctls[0].key, "kernel.shmmni");
	config_free(&cfg);
}

static const char extras[] =
	"{\"ociVersion\":\"1.2.0\",\"process\":{\"args\":[\"sh\"],\"user\":{\"umask\":18},"
	" \"apparmorProfile\":\"\",\"selinuxLabel\":\"\"},"
	" \"root\":{\"path\":\"r\"},\"hostname\":\"h\",\"domainname\":\"example.org\","
	" \"annotations\":{\"org.example\":\"yes\"},"
	" \"hooks\":{\"prestart\":[{\"path\":\"/bin/a\",\"args\":[\"a\",\"-x\"],\"env\":[\"K=v\"],\"timeout\":3}],"
	"  \"poststop\":[{\"path\":\"/bin/b\"},{\"path\":\"/bin/c\"}]},"
	" \"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"uts\",\"path\":\"/proc/1/ns/uts\"}],"
	"  \"personality\":{\"domain\":\"LINUX32\"},\"mountLabel\":\"\","
	"  \"devices\":[{\"path\":\"/dev/fuse\",\"type\":\"c\",\"major\":10,\"minor\":229,\"fileMode\":438,\"uid\":0,\"gid\":0},"
	"   {\"path\":\"/dev/pipe\",\"type\":\"p\"}],"
	"  \"resources\":{\"memory\":{\"limit\":1048576,\"reservation\":524288,\"kernel\":1048576,"
	"    \"kernelTCP\":262144,\"swappiness\":10,\"disableOOMKiller\":true,\"useHierarchy\":true},"
	"   \"devices\":[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":\"b\",\"major\":8,\"access\":\"r\"}]}}}";

static void extra_fields(const void *arg)
{
	struct launch_error err = { 0 };
	struct config cfg;
	const struct device_rule *d;

	(void)arg;
	CHECK(config_parse(extras, &cfg, &err) == 0);
	CHECK(cfg.has_umask && cfg.umask == 022);
	CHECK_STR(cfg.domainname, "example.org");
	CHECK(cfg.annotations != NULL);
	CHECK(cfg.hooks[HOOK_PRESTART].n == 1 && cfg.hooks[HOOK_POSTSTOP].n == 2 && cfg.hooks[HOOK_POSTSTART].n == 0);
	CHECK_STR(cfg.hooks[HOOK_PRESTART].hooks[0].args[1], "-x");
	CHECK_STR(cfg.hooks[HOOK_PRESTART].hooks[0].env[0], "K=v");
	CHECK(cfg.hooks[HOOK_PRESTART].hooks[0].timeout == 3);
	CHECK_STR(cfg.hooks[HOOK_POSTSTOP].hooks[1].path, "/bin/c");
	CHECK(cfg.has_personality && cfg.personality == 0x0008);
	CHECK(cfg.n_devices == 2 && cfg.devices[0].type == 'c' && cfg.devices[0].major == 10 &&
	      cfg.devices[0].minor == 229 && cfg.devices[0].mode == 0666 && cfg.devices[1].type == 'p');
	CHECK(cfg.res.has_reservation && cfg.res.memory_reservation == 524288);
	CHECK(cfg.res.has_kernel_tcp && cfg.res.kernel_tcp == 262144);
	CHECK(cfg.res.has_swappiness && cfg.res.swappiness == 10 && cfg.res.disable_oom_killer);
	/* the config's two rules, then the default devices, then /dev/fuse (the FIFO needs none) */
	CHECK(cfg.res.n_devices == 2 + 8 + 1);
	d = cfg.res.devices;
	CHECK(!d[0].allow && d[0].type == 'a' && d[0].major == -1 && strcmp(d[0].access, "rwm") == 0);
	CHECK(d[1].allow && d[1].type == 'b' && d[1].major == 8 && d[1].minor == -1);
	CHECK(d[2].allow && d[2].type == 'c' && d[2].major == 1 && d[2].minor == 3);
	CHECK(d[10].allow && d[10].type == 'c' && d[10].major == 10 && d[10].minor == 229);
	CHECK(cfg.has_resources);
	config_free(&cfg);
}

static void no_capabilities_by_default(const void *arg)
{
	struct launch_error err = { 0 };
	struct config cfg;

	(void)arg;
	CHECK(config_parse(DOC(BASE_PROC "," BASE_ROOT "," BASE_NS), &cfg, &err) == 0);
	for (int i = 0; i < CAP_SET_COUNT; i++)
		CHECK(cfg.caps[i] == 0);
	CHECK(!cfg.has_resources && cfg.seccomp == NULL && cfg.cgroups_path == NULL);
	config_free(&cfg);
}

void test_config(void)
{
	check_run("config: full linux section", full_config, NULL);
	check_run("config: no capabilities unless listed", no_capabilities_by_default, NULL);
	check_run("config: good config", good_config, NULL);
	check_run("config: hooks, devices, memory settings and the rest", extra_fields, NULL);
	check_run("config: minimal config defaults", minimal_defaults, NULL);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char name[600];
		snprintf(name, sizeof(name), "config: rejects (%s)", bad_cases[i].message);
		check_run(name, bad_config, &bad_cases[i]);
	}
}
