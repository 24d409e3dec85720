/* start, state, kill, delete, spec and features. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <json-c/json.h>
#include <stdlib.h>

#include "caps.h"
#include "cgroup.h"
#include "hooks.h"
#include "rootfs.h"
#include "run.h"
#include "state.h"

#define OCI_VERSION "1.0.2"

static int load(const struct cli *cli, char dir[PATH_MAX], struct state *st,
		struct launch_error *err)
{
	if (state_dir(dir, PATH_MAX, state_root(cli), cli->id) < 0)
		return err_sys(err, cli->command, cli->id);
	if (access(dir, F_OK) < 0)
		return err_msg(err, cli->command, cli->id, "container does not exist");
	return state_read(dir, st, err);
}

/* A pidfd, taken only while the pid is still the container's init. */
static int open_init(const struct state *st)
{
	int fd = (int)syscall(SYS_pidfd_open, st->pid, 0);

	if (fd >= 0 && proc_start_time(st->pid) != st->start_time) {
		close(fd);
		errno = ESRCH;
		return -1;
	}
	return fd;
}

/* The poststart or poststop hooks `create` kept in the state; failures are warnings. */
static void state_hooks(const struct state *st, enum hook_kind kind, const char *status)
{
	struct json_object *hooks = st->hooks ? json_tokener_parse(st->hooks) : NULL, *arr = NULL;
	struct hook_state hs = { st->id, strcmp(status, "stopped") ? st->pid : 0, st->bundle, st->annotations };
	struct hook_list list = { 0 };
	struct launch_error err;
	char *json = NULL;

	if (hooks && json_object_object_get_ex(hooks, config_hook_name(kind), &arr) &&
	    config_hook_list(arr, kind, &list, &err) == 0 && hook_state_json(&hs, status, &json) == 0)
		hooks_run_warn(&list, kind, json);
	free(json);
	config_hook_list_free(&list);
	if (hooks)
		json_object_put(hooks);
}

/*
 * Until the init has exec'd the process (or died): the exec fifo then has no writer left (the
 * init held it open, close-on-exec), which a read end polled for nothing but hang-up shows.
 */
#define START_WAIT_MS 60000

static int wait_exec(const char *fifo, int rd, struct launch_error *err)
{
	struct pollfd p = { .fd = rd, .events = 0 };
	int n;

	do
		n = poll(&p, 1, START_WAIT_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return err_msg(err, "start", fifo, "the container did not run its process within %d s", START_WAIT_MS / 1000);
	return n < 0 ? err_sys(err, "wait for the container's exec", fifo) : 0;
}

static int start_container(const struct cli *cli, const char *dir, const struct state *st,
			   struct launch_error *err)
{
	char fifo[PATH_MAX + 32];
	_cleanup_fd_ int fd = -1, rd = -1;
	bool poststart = st->hooks && strstr(st->hooks, "\"poststart\"");

	snprintf(fifo, sizeof(fifo), "%s/" EXEC_FIFO, dir);
	if (poststart && (rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return err_sys(err, "open exec fifo", fifo);
	fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENXIO ? err_msg(err, "start", cli->id, "container init is not waiting")
				      : err_sys(err, "open exec fifo", fifo);
	if (write(fd, "0", 1) != 1)
		return err_sys(err, "start", cli->id);
	unlink(fifo);
	if (!poststart)
		return 0;
	close(take_fd(&fd));
	if (wait_exec(fifo, rd, err) < 0)
		return -1;
	state_hooks(st, HOOK_POSTSTART, "running");
	return 0;
}

int cmd_start(const struct cli *cli, struct launch_error *err)
{
	char dir[PATH_MAX];
	struct state st;
	const char *status;
	int rc;

	if (load(cli, dir, &st, err) < 0)
		return -1;
	status = state_status(dir, &st);
	if (strcmp(status, "created") != 0)
		rc = err_msg(err, "start", cli->id, "container is %s, not created", status);
	else if (st.no_process)
		rc = err_msg(err, "start", cli->id, "its config.json has no process to run");
	else
		rc = start_container(cli, dir, &st, err);
	state_free(&st);
	return rc;
}

int cmd_state(const struct cli *cli, struct launch_error *err)
{
	char dir[PATH_MAX];
	struct state st;
	const char *status;

	if (load(cli, dir, &st, err) < 0)
		return -1;
	status = state_status(dir, &st);
	printf("{\"ociVersion\":\"%s\",\"id\":\"%s\",\"status\":\"%s\",\"pid\":%d,"
	       "\"bundle\":", OCI_VERSION, st.id, status, strcmp(status, "stopped") ? st.pid : 0);
	/* the bundle path is the only free text: escape it */
	putchar('"');
	for (const char *p = st.bundle; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	printf("\",\"created\":\"%s\",\"annotations\":%s}\n", st.created,
	       st.annotations ? st.annotations : "{}");
	state_free(&st);
	return 0;
}

/* kill --all: every process in the container's cgroup (the cgroup.procs of one hierarchy). */
static int kill_all(const struct state *st, int sig, struct launch_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], line[32];
	FILE *f;

	if (!st->has_cgroup)
		return err_msg(err, "kill --all", st->id, "the container has no cgroup to find its processes in");
	if (cgroup_dir(&st->cgroup, CG_MEMORY, dir) < 0 || snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
		return err_errno(err, ENAMETOOLONG, "kill --all", st->id);
	f = fopen(path, "re");
	if (!f)
		return err_sys(err, "read", path);
	while (fgets(line, sizeof(line), f))
		if (kill((pid_t)atoi(line), sig) < 0 && errno != ESRCH) {
			fclose(f);
			return err_sys(err, "kill", st->id);
		}
	fclose(f);
	return 0;
}

int cmd_kill(const struct cli *cli, struct launch_error *err)
{
	char dir[PATH_MAX];
	struct state st;
	_cleanup_fd_ int fd = -1;
	int sig = cli->signal ? signal_parse(cli->signal) : SIGTERM;

	if (sig < 0)
		return err_msg(err, "kill", cli->signal, "unknown signal");
	if (load(cli, dir, &st, err) < 0)
		return -1;
	state_free(&st);
	fd = open_init(&st);
	if (fd < 0)
		return err_msg(err, "kill", cli->id, "container is not running");
	if (cli->all)
		return kill_all(&st, sig, err);
	if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
		return err_sys(err, "kill", cli->id);
	return 0;
}

/* SIGKILL the init and wait (bounded) until it is gone. */
static int stop(const struct state *st, struct launch_error *err)
{
	_cleanup_fd_ int fd = open_init(st);
	struct pollfd p;

	if (fd < 0)
		return 0; /* already gone */
	if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		return err_sys(err, "kill", st->id);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 10000) <= 0)
		return err_msg(err, "delete", st->id, "container did not exit after SIGKILL");
	return 0;
}

/* Undo what `create` made (the init, its cgroup and mounts, the state), then the poststop hooks. */
static int delete_container(const struct cli *cli, const char *dir, struct state *st,
			    struct launch_error *err)
{
	const char *status = state_status(dir, st);

	if (strcmp(status, "stopped") != 0 && !cli->force)
		return err_msg(err, "delete", cli->id, "container is %s; stop it first or use --force", status);
	if (strcmp(status, "stopped") != 0 && stop(st, err) < 0)
		return -1;
	if (st->has_cgroup && cgroup_remove(&st->cgroup) < 0)
		return err_sys(err, "remove cgroup", st->cgroup.path);
	root_mount_release(&st->root_mount);
	if (state_remove(dir) < 0)
		return err_sys(err, "remove state", dir);
	state_hooks(st, HOOK_POSTSTOP, "stopped");
	return 0;
}

int cmd_delete(const struct cli *cli, struct launch_error *err)
{
	char dir[PATH_MAX];
	struct state st;
	int rc;

	if (state_dir(dir, sizeof(dir), state_root(cli), cli->id) < 0)
		return err_sys(err, "delete", cli->id);
	if (access(dir, F_OK) < 0 && cli->force)
		return 0; /* nothing left to clean up */
	if (load(cli, dir, &st, err) < 0) {
		/* a state dir without a readable state (a killed `create`) */
		if (!cli->force)
			return -1;
		state_remove(dir);
		return 0;
	}
	rc = delete_container(cli, dir, &st, err);
	state_free(&st);
	return rc;
}

static const char default_spec[] =
	"{\n"
	"  \"ociVersion\": \"" OCI_VERSION "\",\n"
	"  \"process\": {\n"
	"    \"terminal\": false,\n"
	"    \"user\": { \"uid\": 0, \"gid\": 0 },\n"
	"    \"args\": [ \"sh\" ],\n"
	"    \"env\": [ \"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"TERM=xterm\" ],\n"
	"    \"cwd\": \"/\",\n"
	"    \"capabilities\": {\n"
	"      \"bounding\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
	"      \"effective\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
	"      \"permitted\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
	"      \"inheritable\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
	"      \"ambient\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ]\n"
	"    },\n"
	"    \"rlimits\": [ { \"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024 } ],\n"
	"    \"noNewPrivileges\": true\n"
	"  },\n"
	"  \"root\": { \"path\": \"rootfs\", \"readonly\": true },\n"
	"  \"hostname\": \"skiff\",\n"
	"  \"mounts\": [\n"
	"    { \"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\" },\n"
	"    { \"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\", \"options\": [ \"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\" ] },\n"
	"    { \"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\", \"options\": [ \"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\" ] },\n"
	"    { \"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\", \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\" ] },\n"
	"    { \"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\", \"options\": [ \"nosuid\", \"noexec\", \"nodev\" ] },\n"
	"    { \"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\", \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"ro\" ] }\n"
	"  ],\n"
	"  \"linux\": {\n"
	"    \"resources\": { \"devices\": [ { \"allow\": false, \"access\": \"rwm\" } ] },\n"
	"    \"namespaces\": [ { \"type\": \"pid\" }, { \"type\": \"network\" }, { \"type\": \"ipc\" }, { \"type\": \"uts\" }, { \"type\": \"mount\" }, { \"type\": \"cgroup\" } ],\n"
	"    \"maskedPaths\": [ \"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\", \"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\", \"/proc/sched_debug\", \"/sys/firmware\", \"/proc/scsi\" ],\n"
	"    \"readonlyPaths\": [ \"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\" ]\n"
	"  }\n"
	"}\n";

int cmd_spec(const struct cli *cli, struct launch_error *err)
{
	char path[PATH_MAX];
	_cleanup_fd_ int fd = -1;

	if (cli->rootless)
		return err_msg(err, "spec", NULL, "--rootless is not supported");
	if (strcmp(cli->bundle, "-") == 0) {
		fputs(default_spec, stdout);
		return 0;
	}
	if (path_join(path, sizeof(path), cli->bundle, "config.json") < 0)
		return err_sys(err, "spec", cli->bundle);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_sys(err, "write", path);
	if (write_all(fd, default_spec, strlen(default_spec)) < 0)
		return err_sys(err, "write", path);
	return 0;
}

int cmd_features(const struct cli *cli, struct launch_error *err)
{
	(void)cli;
	(void)err;
	printf("{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.2.0\","
	       "\"hooks\":[\"prestart\",\"createRuntime\",\"createContainer\",\"startContainer\","
	       "\"poststart\",\"poststop\"],"
	       "\"mountOptions\":[\"async\",\"atime\",\"bind\",\"defaults\",\"dev\",\"diratime\","
	       "\"dirsync\",\"exec\",\"mand\",\"noatime\",\"nodev\",\"nodiratime\",\"noexec\","
	       "\"nomand\",\"norelatime\",\"nostrictatime\",\"nosuid\",\"private\",\"rbind\","
	       "\"relatime\",\"ro\",\"rprivate\",\"rshared\",\"rslave\",\"runbindable\",\"rw\","
	       "\"shared\",\"slave\",\"strictatime\",\"suid\",\"sync\",\"unbindable\"],"
	       "\"linux\":{\"namespaces\":[\"cgroup\",\"ipc\",\"mount\",\"network\",\"pid\",\"user\",\"uts\"],"
	       "\"capabilities\":[");
	for (int i = 0; i < cap_count(); i++)
		printf("%s\"%s\"", i ? "," : "", cap_name(i));
	printf("],\"cgroup\":{\"v1\":true,\"v2\":true,\"systemd\":false,\"systemdUser\":false,\"rdma\":false},"
	       "\"seccomp\":{\"enabled\":true,\"actions\":[\"SCMP_ACT_ALLOW\",\"SCMP_ACT_ERRNO\","
	       "\"SCMP_ACT_KILL\",\"SCMP_ACT_KILL_PROCESS\",\"SCMP_ACT_KILL_THREAD\",\"SCMP_ACT_LOG\","
	       "\"SCMP_ACT_TRACE\",\"SCMP_ACT_TRAP\"],\"operators\":[\"SCMP_CMP_EQ\",\"SCMP_CMP_GE\","
	       "\"SCMP_CMP_GT\",\"SCMP_CMP_LE\",\"SCMP_CMP_LT\",\"SCMP_CMP_MASKED_EQ\",\"SCMP_CMP_NE\"],"
	       "\"archs\":[\"SCMP_ARCH_AARCH64\",\"SCMP_ARCH_ARM\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X86_64\","
	       "\"SCMP_ARCH_X32\"],\"knownFlags\":[\"SECCOMP_FILTER_FLAG_LOG\","
	       "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\",\"SECCOMP_FILTER_FLAG_TSYNC\"],"
	       "\"supportedFlags\":[\"SECCOMP_FILTER_FLAG_LOG\","
	       "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\",\"SECCOMP_FILTER_FLAG_TSYNC\"]},"
	       "\"apparmor\":{\"enabled\":false},\"selinux\":{\"enabled\":false},"
	       "\"intelRdt\":{\"enabled\":false},\"mountExtensions\":{\"idmap\":{\"enabled\":false}}},"
	       "\"annotations\":{\"io.skiff.launcher.terminal\":\"unsupported\"},"
	       "\"potentiallyUnsafeConfigAnnotations\":[]}\n");
	return 0;
}
