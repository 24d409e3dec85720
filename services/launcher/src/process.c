#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps.h"
#include "hooks.h"
#include "namespaces.h"
#include "rootfs.h"
#include "sync.h"

static int set_rlimits(const struct config *cfg, struct launch_error *err)
{
	for (size_t i = 0; i < cfg->n_rlimits; i++)
		if (setrlimit(cfg->rlimits[i].resource, &cfg->rlimits[i].limit) < 0)
			return err_sys(err, "setrlimit", "process.rlimits");
	return 0;
}

/* Groups first: after setresuid() we could no longer change them. */
static int switch_user(const struct config *cfg, struct launch_error *err)
{
	char id[32];

	if (setgroups(cfg->n_additional_gids, cfg->additional_gids) < 0)
		return err_sys(err, "setgroups", "process.user.additionalGids");
	snprintf(id, sizeof(id), "%u", cfg->gid);
	if (setresgid(cfg->gid, cfg->gid, cfg->gid) < 0)
		return err_sys(err, "setgid", id);
	snprintf(id, sizeof(id), "%u", cfg->uid);
	if (setresuid(cfg->uid, cfg->uid, cfg->uid) < 0)
		return err_sys(err, "setuid", id);
	return 0;
}

/* A credential change clears the parent-death signal, so arm it again and
 * then make sure the launcher did not exit in between: once it is gone the
 * sync socket reads EOF, i.e. polls readable. */
static int rearm_parent_death(int sync_fd, struct launch_error *err)
{
	struct pollfd p = { .fd = sync_fd, .events = POLLIN };

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return err_sys(err, "prctl PR_SET_PDEATHSIG", NULL);
	if (poll(&p, 1, 0) != 0)
		return err_msg(err, "wait for launcher", NULL, "launcher exited");
	return 0;
}

/* A cwd reached through a leaked host fd (/proc/self/fd/N) is outside the
 * new root; the kernel then reports it as "(unreachable)", which glibc's
 * getcwd() turns into ENOENT. Checked before the seccomp filter can be loaded (a profile may
 * deny getcwd); the chdir is made again as the container's user (see container_init). */
static int check_cwd(const char *cwd, struct launch_error *err)
{
	char buf[PATH_MAX];

	if (chdir(cwd) < 0)
		return err_sys(err, "chdir", cwd);
	if (!getcwd(buf, sizeof(buf)) || buf[0] != '/')
		return err_msg(err, "chdir", cwd, "working directory is outside the container root");
	return 0;
}

/* Everything above the preserved range closes on exec; the preserved fds
 * themselves must survive it even if the caller opened them CLOEXEC. */
static int prepare_fds(unsigned preserve, struct launch_error *err)
{
	if (close_range(3 + preserve, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		return err_sys(err, "close_range", NULL);
	for (unsigned fd = 3; fd < 3 + preserve; fd++)
		if (fcntl((int)fd, F_SETFD, 0) < 0 && errno != EBADF)
			return err_sys(err, "keep fd open", "--preserve-fds");
	return 0;
}

/* Namespaces the init makes itself (a mount namespace, for an init cloned ahead), then those
 * joined by path (user last, pid by the parent). */
static int join_namespaces(const struct init_args *a, struct launch_error *err)
{
	const struct config *cfg = a->cfg;

	if (a->unshare_flags && unshare((int)a->unshare_flags) < 0)
		return err_sys(err, "unshare", "namespaces of an init cloned ahead");
	for (size_t i = 0; i < cfg->n_joins; i++) {
		unsigned long f = cfg->joins[i].flag;
		if (f == CLONE_NEWUSER || f == CLONE_NEWPID)
			continue;
		if (setns(a->join_fds[i], (int)f) < 0)
			return err_sys(err, "setns", cfg->joins[i].path);
	}
	return 0;
}

/* Only once the launcher has put the init in its cgroup (see sync.h), so that it sees itself
 * at the root of its cgroup namespace; nothing runs in the container before that. */
static int enter_cgroup_namespace(const struct init_args *a, struct launch_error *err)
{
	if (sync_expect(a->sync_fd, SYNC_CGROUP) < 0)
		return err_msg(err, "wait for the cgroup", NULL, "launcher did not confirm");
	if ((a->cfg->clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		return err_sys(err, "unshare", "cgroup namespace");
	return 0;
}


static int write_proc(const char *path, const char *value, struct launch_error *err)
{
	_cleanup_fd_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write_all(fd, value, strlen(value)) < 0)
		return err_sys(err, "write", path);
	return 0;
}

static int set_oom_score_adj(const struct config *cfg, struct launch_error *err)
{
	char v[16];

	if (!cfg->has_oom_score_adj)
		return 0;
	snprintf(v, sizeof(v), "%d", cfg->oom_score_adj);
	return write_proc("/proc/self/oom_score_adj", v, err);
}

/* The container user namespace comes last: every mount above was made by
 * host root in namespaces owned by the host, so nothing in the container,
 * whatever capabilities it holds in its own user namespace, can unmount a
 * masked path or remount a read-only one. The parent writes the maps. */
static int enter_user_namespace(const struct init_args *a, struct launch_error *err)
{
	const struct config *cfg = a->cfg;

	for (size_t i = 0; i < cfg->n_joins; i++)
		if (cfg->joins[i].flag == CLONE_NEWUSER &&
		    setns(a->join_fds[i], CLONE_NEWUSER) < 0)
			return err_sys(err, "setns", cfg->joins[i].path);
	if (!(cfg->clone_flags & CLONE_NEWUSER))
		return 0;
	if (unshare(CLONE_NEWUSER) < 0)
		return err_sys(err, "unshare", "user namespace");
	if (sync_send(a->sync_fd, SYNC_USERNS, err) < 0)
		return -1;
	if (sync_expect(a->sync_fd, SYNC_USERNS_DONE) < 0)
		return err_msg(err, "wait for uid/gid maps", NULL, "launcher did not confirm");
	return 0;
}

/* `create`: tell the parent we are ready and wait for `start` to write a
 * byte into the exec fifo. The parent exits, so nothing may kill us then. */
static int wait_for_start(const struct init_args *a, struct launch_error *err)
{
	char c;
	ssize_t n;

	if (prctl(PR_SET_PDEATHSIG, 0) < 0)
		return err_sys(err, "prctl PR_SET_PDEATHSIG", NULL);
	if (sync_send(a->sync_fd, SYNC_CREATED, err) < 0)
		return -1;
	do
		n = read(a->fifo_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(EXIT_LAUNCH_FAILED); /* nobody is listening for errors any more */
	return 0;
}

static int setup_namespaces(const struct config *cfg, struct launch_error *err)
{
	if ((cfg->clone_flags & CLONE_NEWNET) && ns_loopback_up(err) < 0)
		return -1;
	if (cfg->hostname && sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
		return err_sys(err, "sethostname", cfg->hostname);
	if (cfg->domainname && setdomainname(cfg->domainname, strlen(cfg->domainname)) < 0)
		return err_sys(err, "setdomainname", cfg->domainname);
	return 0;
}

/* The hooks the init takes part in; with none, none of their messages is sent. */
static bool has_init_hooks(const struct config *cfg)
{
	return cfg->hooks[HOOK_PRESTART].n || cfg->hooks[HOOK_CREATE_RUNTIME].n ||
	       cfg->hooks[HOOK_CREATE_CONTAINER].n || cfg->hooks[HOOK_START_CONTAINER].n;
}

/* The container's state for a hook the init runs; the launcher told it its host pid. */
static int run_init_hooks(const struct init_args *a, enum hook_kind kind, const char *status,
			  pid_t pid, struct launch_error *err)
{
	_cleanup_free_ char *json = NULL;
	struct hook_state st = { a->id, pid, a->bundle, NULL };

	if (!a->cfg->hooks[kind].n)
		return 0;
	if (a->cfg->annotations)
		st.annotations = json_object_to_json_string_ext(a->cfg->annotations, JSON_C_TO_STRING_PLAIN);
	if (hook_state_json(&st, status, &json) < 0)
		return err_sys(err, "state for", config_hook_name(kind));
	return hooks_run(&a->cfg->hooks[kind], kind, json, err);
}

/* The launcher runs prestart and createRuntime meanwhile (see sync.h). */
static int create_hooks(const struct init_args *a, pid_t *pid, struct launch_error *err)
{
	uint32_t v;

	*pid = 0;
	if (!has_init_hooks(a->cfg))
		return 0;
	if (sync_send(a->sync_fd, SYNC_HOOKS, err) < 0)
		return -1;
	if (sync_expect_value(a->sync_fd, SYNC_HOOKS_DONE, &v) < 0)
		return err_msg(err, "wait for the create hooks", NULL, "launcher did not confirm");
	*pid = (pid_t)v;
	return run_init_hooks(a, HOOK_CREATE_CONTAINER, "creating", *pid, err);
}

/* The container's mount namespace is new, joined, or (none in the config) the launcher's. */
static bool own_mount_namespace(const struct init_args *a)
{
	const struct config *cfg = a->cfg;

	if ((cfg->clone_flags | a->unshare_flags) & CLONE_NEWNS)
		return true;
	for (size_t i = 0; i < cfg->n_joins; i++)
		if (cfg->joins[i].flag == CLONE_NEWNS)
			return true;
	return false;
}

static int setup_root(const struct init_args *a, pid_t *pid, struct launch_error *err)
{
	bool own = own_mount_namespace(a);
	_cleanup_fd_ int rootfd = rootfs_prepare(a->cfg, a->root, a->bundle, a->cgroup, own, err);

	if (rootfd < 0 || create_hooks(a, pid, err) < 0)
		return -1;
	return rootfs_enter(a->cfg, rootfd, own, err);
}

/* Everything up to the user namespace runs as host root (see above). */
static int setup_as_host_root(const struct init_args *a, pid_t *pid, struct launch_error *err)
{
	const struct config *cfg = a->cfg;
	/* in its cgroup before the mounts when they show it, or hooks may look at it */
	bool cgroup_first = config_mounts_cgroup(cfg) || has_init_hooks(cfg);

	return join_namespaces(a, err) < 0 || set_oom_score_adj(cfg, err) < 0 ||
	       setup_namespaces(cfg, err) < 0 || sysctls_apply(cfg, err) < 0 ||
	       (cgroup_first && enter_cgroup_namespace(a, err) < 0) ||
	       setup_root(a, pid, err) < 0 ||
	       (!cgroup_first && enter_cgroup_namespace(a, err) < 0) || set_rlimits(cfg, err) < 0
		       ? -1 : 0;
}

/* Last settings of the process itself, just before the exec. */
static int finish_process(const struct config *cfg, struct launch_error *err)
{
	if (cfg->has_umask)
		umask(cfg->umask);
	if (cfg->has_personality && personality(cfg->personality) < 0)
		return err_sys(err, "personality", "linux.personality");
	return 0;
}

/* Then the identity the process runs with, and its privileges. A seccomp
 * filter needs CAP_SYS_ADMIN to load without no_new_privs, so it goes in
 * before the capabilities drop in that case (as runc). */
static int drop_privileges(const struct init_args *a, struct launch_error *err)
{
	const struct config *cfg = a->cfg;

	if (caps_drop_bounding(cfg->caps, err) < 0)
		return -1;
	if (a->seccomp && !cfg->no_new_privileges && filter_load(a->seccomp, err) < 0)
		return -1;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return err_sys(err, "prctl PR_SET_KEEPCAPS", NULL);
	if (switch_user(cfg, err) < 0 || caps_apply(cfg->caps, err) < 0)
		return -1;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return err_sys(err, "prctl PR_SET_KEEPCAPS", NULL);
	if (cfg->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_sys(err, "prctl PR_SET_NO_NEW_PRIVS", NULL);
	return 0;
}

int container_init(const struct init_args *a, struct launch_error *err)
{
	const struct config *cfg = a->cfg;
	pid_t pid;

	reset_signals();
	/* fds before privileges: without no_new_privs the config's seccomp filter is loaded with
	 * the capability drop, and need not allow close_range (older profiles do not know it) */
	if (setup_as_host_root(a, &pid, err) < 0 || enter_user_namespace(a, err) < 0 ||
	    prepare_fds(a->preserve_fds, err) < 0 || check_cwd(cfg->cwd, err) < 0 ||
	    drop_privileges(a, err) < 0)
		return -1;
	if (a->fifo_fd < 0 && rearm_parent_death(a->sync_fd, err) < 0)
		return -1;
	if (chdir(cfg->cwd) < 0) /* as the container's user, with its permissions */
		return err_sys(err, "chdir", cfg->cwd);
	if (a->fifo_fd >= 0 && wait_for_start(a, err) < 0)
		return -1;
	if (!cfg->args) /* created without a process: `start` refuses, this is for a stray writer */
		return err_msg(err, "start", NULL, "config.json has no process");
	if (run_init_hooks(a, HOOK_START_CONTAINER, "created", pid, err) < 0 || finish_process(cfg, err) < 0)
		return -1;
	if (a->seccomp && cfg->no_new_privileges && filter_load(a->seccomp, err) < 0)
		return -1;
	return exec_process(cfg, err);
}

static int exec_failed(struct launch_error *err, int errnum, const char *file)
{
	err_errno(err, errnum, "exec", file);
	err->exit_code = errnum == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
	return -1;
}

int exec_process(const struct config *cfg, struct launch_error *err)
{
	char *const *argv = (char *const *)cfg->args;
	char *const *envp = (char *const *)cfg->env;
	const char *file = argv[0], *path = config_getenv(cfg, "PATH");
	bool denied = false;

	if (strchr(file, '/')) {
		execve(file, argv, envp);
		return exec_failed(err, errno, file);
	}
	for (const char *p = path ? path : DEFAULT_PATH, *end;; p = end + 1) {
		char buf[PATH_MAX];
		end = strchrnul(p, ':');
		/* an empty PATH entry means the current directory */
		snprintf(buf, sizeof(buf), "%.*s/%s", end == p ? 1 : (int)(end - p),
			 end == p ? "." : p, file);
		execve(buf, argv, envp);
		if (errno == EACCES)
			denied = true;
		else if (errno != ENOENT && errno != ENOTDIR)
			return exec_failed(err, errno, buf);
		if (!*end)
			break;
	}
	if (denied)
		return exec_failed(err, EACCES, file);
	err_msg(err, "exec", file, "executable file not found in PATH");
	err->exit_code = EXIT_NOT_FOUND;
	return -1;
}
