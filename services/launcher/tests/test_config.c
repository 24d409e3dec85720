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
}

struct bad_case {
	const char *json;
	const char *message; /* expected text after "config.json: " */
};

static const struct bad_case bad_cases[] = {
	{ "{", "invalid JSON" },
	{ "[]", "top level: must be an object" },
	{ "{\"process\":{\"args\":[\"sh\"]}}", "ociVersion: must be a 1.x version string" },
	{ DOC(BASE_ROOT "," BASE_NS), "process: required" },
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
	{ DOC(BASE_PROC "," BASE_ROOT ",\"hostname\":\"h\"," BASE_NS), "hostname: requires a uts namespace in linux.namespaces" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":{}," BASE_NS), "mounts: must be an array" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"type\":\"proc\"}]," BASE_NS), "mounts[0].destination: required" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"destination\":\"/x\"}]," BASE_NS), "mounts[0].type: required unless options contain bind or rbind" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"bind\"}]," BASE_NS), "mounts[0].source: required for a bind mount" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"tmpfs\",\"options\":[1]}]," BASE_NS), "mounts[0].options[0]: must be a string" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"cgroup\"}]," BASE_NS), "mounts[0].type: cgroup mounts are not supported yet" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"bogus\"}]}"), "linux.namespaces[1].type: unknown namespace type \"bogus\"" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"user\"}]}"), "linux.namespaces[1].type: user namespaces are not supported yet" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"network\",\"path\":\"/run/netns/x\"}]}"), "linux.namespaces[1].path: joining an existing namespace is not supported yet" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"mount\"}]}"), "linux.namespaces[1].type: duplicate mount namespace" },
	{ DOC(BASE_PROC "," BASE_ROOT ",\"linux\":{\"namespaces\":[{\"type\":\"pid\"}]}"), "linux.namespaces: a mount namespace is required (pivot_root)" },
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

void test_config(void)
{
	check_run("config: good config", good_config, NULL);
	check_run("config: minimal config defaults", minimal_defaults, NULL);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char name[600];
		snprintf(name, sizeof(name), "config: rejects (%s)", bad_cases[i].message);
		check_run(name, bad_config, &bad_cases[i]);
	}
}
