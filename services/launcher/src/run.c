/* `run` and `create`: everything the launcher prepares in the parent, the
 * clone into the namespaces, and the parent's half of the handshake. */
#define _GNU_SOURCE
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "cgroup.h"
#include "config.h"
#include "hooks.h"
#include "process.h"
#include "filter.h"
#include "namespaces.h"
#include "state.h"
#include "sync.h"

static const int forwarded_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

/*
 * `run --wait-fd` clones the container init ahead, while it waits for the go: the clone, with
 * new PID, network, IPC and UTS namespaces, is the costliest single step of a start here (half
 * a millisecond of it the network namespace), and none of it depends on the bundle. The init
 * then waits, having made nothing else. Only a config that asks for exactly these namespaces
 * (and mount, user and cgroup ones, which every init makes itself later) and joins none gets
 * it; any other config has it killed and a new init cloned as usual. Its mount namespace is
 * made after the go, so that it copies the host's mounts as they are then (an image mounted
 * meanwhile included). Woken by the go byte along with the launcher, it reads config.json
 * itself, and is used only if it read the very bytes the launcher parsed and checked; the root
 * path and the seccomp BPF come through memory shared with the launcher.
 */
#define EARLY_FLAGS (CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
#define EARLY_ALSO (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWCGROUP)

struct handoff {
	char root[PATH_MAX];
	bool has_cg;
	struct cgroup cg;
	bool has_seccomp;
	unsigned int bpf_flags;
	unsigned short bpf_len;
	struct sock_filter bpf[BPF_MAXINSNS];
	char config[CONFIG_MAX_SIZE + 1];
};

static void kill_and_reap(pid_t pid);

/* Written before signals are unblocked, cleared before the init is reaped,
 * so a forwarded signal never reaches a recycled pid. */
static volatile sig_atomic_t init_pid;

/* Everything one launch holds; released by launch_release(). */
struct launch {
	const struct cli *cli;
	bool create;             /* `create` rather than `run` */
	struct config cfg;
	char rootfs[PATH_MAX];
	char dir[PATH_MAX];      /* state dir, "" until made */
	struct cgroup cg;
	bool has_cg;             /* the container has a cgroup (planned in prepare) */
	bool cg_made;            /* and it was set up: remove it */
	struct root_mount root_mount; /* no mount namespace of its own: the mounts it left in ours */
	struct filter_prog seccomp;
	bool has_seccomp;
	int join_fds[MAX_NS_JOINS];
	int fifo_fd;
	pid_t pid;
	char *json;              /* config.json as read */
	struct handoff *handoff; /* shared with an init cloned ahead; NULL when there is none */
	int early_fd;            /* sync socket to that init until it is given the go, else -1 */
	bool holding;            /* held_ns is open (see hold_namespaces) */
	bool spawned;            /* an init was cloned for the container: poststop hooks are due */
	int held_ns[7];
};

const char *state_root(const struct cli *cli)
{
	return cli->root ? cli->root : DEFAULT_STATE_ROOT;
}

static void forward_signal(int sig)
{
	int saved = errno;
	pid_t pid = init_pid;

	if (pid > 0)
		kill(pid, sig);
	errno = saved;
}

/* Block the forwarded signals until the init's pid is known; the init
 * resets handlers and mask itself. */
static void install_forwarding(sigset_t *old)
{
	struct sigaction sa = { .sa_handler = forward_signal, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(int); i++)
		sigaddset(&sa.sa_mask, forwarded_signals[i]);
	sigprocmask(SIG_BLOCK, &sa.sa_mask, old);
	for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(int); i++)
		sigaction(forwarded_signals[i], &sa, NULL);
}

static int resolve_root(const struct config *cfg, const char *bundle, char out[PATH_MAX],
			struct launch_error *err)
{
	char joined[PATH_MAX];
	const char *path = cfg->root_path;

	if (path[0] != '/') {
		if (path_join(joined, sizeof(joined), bundle, path) < 0)
			return err_sys(err, "root.path", path);
		path = joined;
	}
	if (!realpath(path, out))
		return err_sys(err, "root.path", path);
	return 0;
}

/* Keep launcher fds clear of the --preserve-fds range: the init clears
 * CLOEXEC there, which would leak them into the container. */
static int lift_fd(int *fd, unsigned preserve, struct launch_error *err)
{
	int moved;

	if (*fd < 0 || (unsigned)*fd >= 3 + preserve)
		return 0;
	moved = fcntl(*fd, F_DUPFD_CLOEXEC, (int)(3 + preserve));
	if (moved < 0)
		return err_sys(err, "dup fd", NULL);
	close(*fd);
	*fd = moved;
	return 0;
}

static int make_sync_pair(int fds[2], unsigned preserve, struct launch_error *err)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return err_sys(err, "socketpair", NULL);
	if (lift_fd(&fds[0], preserve, err) < 0 || lift_fd(&fds[1], preserve, err) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	return 0;
}

/* ---- preparation in the parent ---- */

/* The state of a container whose launcher was SIGKILLed stays behind; once
 * its init is gone the ID may be used again (its cgroup goes with it). A
 * state dir without a readable state is a create in progress: left alone. */
static int reclaim_stopped(const char *dir)
{
	struct launch_error ignored;
	struct state st;

	if (state_read(dir, &st, &ignored) < 0 || strcmp(state_status(dir, &st), "stopped") != 0) {
		state_free(&st);
		errno = EEXIST;
		return -1;
	}
	if (st.has_cgroup)
		cgroup_remove(&st.cgroup);
	root_mount_release(&st.root_mount);
	state_free(&st);
	return state_remove(dir);
}

static int make_state_dir(struct launch *l, struct launch_error *err)
{
	const char *root = state_root(l->cli);
	char dir[PATH_MAX];

	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		return err_sys(err, "create state root", root);
	if (state_dir(dir, sizeof(dir), root, l->cli->id) < 0)
		return err_sys(err, "state dir", l->cli->id);
	if (mkdir(dir, 0700) < 0 && (errno != EEXIST || reclaim_stopped(dir) < 0 || mkdir(dir, 0700) < 0))
		return errno == EEXIST ? err_msg(err, l->cli->command, l->cli->id, "a container with this ID already exists")
				       : err_sys(err, "create state dir", dir);
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	return 0;
}

static int prepare_seccomp(struct launch *l, struct launch_error *err)
{
	char cache[PATH_MAX];

	if (!l->cfg.seccomp)
		return 0;
	if (path_join(cache, sizeof(cache), state_root(l->cli), "@seccomp") < 0)
		return err_sys(err, "seccomp cache", NULL);
	if (filter_prepare(l->cfg.seccomp, cache, &l->seccomp, err) < 0)
		return -1;
	l->has_seccomp = true;
	return 0;
}

/* Namespaces joined by path are opened here; a pid namespace is joined by
 * the parent itself, so that its child is born in it. */
static int open_joins(struct launch *l, struct launch_error *err)
{
	for (size_t i = 0; i < l->cfg.n_joins; i++) {
		l->join_fds[i] = open(l->cfg.joins[i].path, O_RDONLY | O_CLOEXEC);
		if (l->join_fds[i] < 0)
			return err_sys(err, "open namespace", l->cfg.joins[i].path);
		if (lift_fd(&l->join_fds[i], l->cli->preserve_fds, err) < 0)
			return -1;
		if (l->cfg.joins[i].flag == CLONE_NEWPID &&
		    setns(l->join_fds[i], CLONE_NEWPID) < 0)
			return err_sys(err, "setns", l->cfg.joins[i].path);
	}
	return 0;
}

/*
 * The cgroup is decided before the init is cloned, so that the init knows it (its cgroup
 * mounts), and made after the clone, while the init sets up (see enter_cgroup). A container
 * gets one when the config names a path, sets limits, or mounts its cgroups.
 */
static int plan_cgroup(struct launch *l, struct launch_error *err)
{
	char path[1100];
	const char *p = l->cfg.cgroups_path;
	bool mounted = config_mounts_cgroup(&l->cfg);

	if (!p && !l->cfg.has_resources && !mounted)
		return 0; /* nothing to limit, nothing to create */
	if (!p) {
		snprintf(path, sizeof(path), "/skiff-launch/%s", l->cli->id);
		p = path;
	}
	if (cgroup_plan(&l->cg, CGROUP_ROOT, 0, p, &l->cfg.res, mounted, err) < 0)
		return -1;
	l->has_cg = true;
	return 0;
}

static int make_fifo(struct launch *l, struct launch_error *err)
{
	char path[PATH_MAX + 32];

	if (!l->create)
		return 0;
	snprintf(path, sizeof(path), "%s/" EXEC_FIFO, l->dir);
	if (mkfifo(path, 0600) < 0)
		return err_sys(err, "create exec fifo", path);
	/* O_RDWR: opens at once, and the init's reads block until `start` writes. */
	l->fifo_fd = open(path, O_RDWR | O_CLOEXEC);
	if (l->fifo_fd < 0)
		return err_sys(err, "open exec fifo", path);
	return lift_fd(&l->fifo_fd, l->cli->preserve_fds, err);
}

/* ---- the namespaces, held until the status is sent ---- */

/*
 * `run --status-fd`: the container's namespaces are held open from before its exec until the
 * status is sent. Otherwise the init tears down the namespaces it was last in as it exits,
 * before its parent hears of the exit: every mount of the container unmounted, the network
 * namespace, and so on (0.6 ms here). Held, they go when the launcher lets go of them, after
 * the caller has the status. With a user namespace they are opened while the init waits for
 * its maps, so it cannot have exited; without one, only once it exec'd, which a process that
 * exits at once can outrun. Best effort: a namespace that cannot be opened is not held.
 */
static void hold_namespaces(struct launch *l)
{
	static const char *const types[] = { "mnt", "net", "ipc", "pid", "uts", "cgroup", "user" };
	char path[64];

	if (l->holding || l->create || !l->cli->status_fd)
		return;
	l->holding = true;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", l->pid, types[i]);
		l->held_ns[i] = open(path, O_RDONLY | O_CLOEXEC);
	}
}

static void release_namespaces(struct launch *l)
{
	for (size_t i = 0; l->holding && i < sizeof(l->held_ns) / sizeof(l->held_ns[0]); i++)
		if (l->held_ns[i] >= 0)
			close(l->held_ns[i]);
	l->holding = false;
}

/* ---- the init cloned ahead ---- */

static void early_discard(struct launch *l)
{
	if (l->early_fd >= 0) {
		close(l->early_fd); /* the init reads EOF and exits, unless it is killed first */
		l->early_fd = -1;
		kill_and_reap(l->pid);
		l->pid = 0;
	}
	if (l->handoff)
		munmap(l->handoff, sizeof(*l->handoff));
	l->handoff = NULL;
}

static bool early_fits(const struct config *cfg)
{
	return (cfg->clone_flags & ~(unsigned long)EARLY_ALSO) == EARLY_FLAGS &&
	       (cfg->clone_flags & CLONE_NEWNS) && !cfg->n_joins;
}

/* The launcher's own parse decides whether the init cloned ahead may be used. */
static int load_config(struct launch *l, struct launch_error *err)
{
	if (config_read(l->cli->bundle, &l->json, err) < 0 || config_parse(l->json, &l->cfg, err) < 0)
		return -1;
	if (!l->cfg.args && !l->create)
		return err_msg(err, "config.json", NULL, "process: required to run a container");
	if (l->early_fd >= 0 && !early_fits(&l->cfg))
		early_discard(l);
	return 0;
}

/* A setting the kernel cannot apply as written is said, not passed over (see config.c). */
static void warn_config(const struct config *cfg)
{
	if (!cfg->ambient_dropped)
		return;
	fputs("skiff-launch: warning: process.capabilities.ambient:", stderr);
	for (int c = 0; c < 64; c++)
		if ((cfg->ambient_dropped >> c) & 1)
			fprintf(stderr, " %s", cap_name(c) ? cap_name(c) : "?");
	fputs(" not raised: an ambient capability must also be permitted and inheritable\n", stderr);
}

static int prepare(struct launch *l, struct launch_error *err)
{
	if (load_config(l, err) < 0 ||
	    resolve_root(&l->cfg, l->cli->bundle, l->rootfs, err) < 0 ||
	    plan_cgroup(l, err) < 0 || make_state_dir(l, err) < 0 || prepare_seccomp(l, err) < 0 ||
	    open_joins(l, err) < 0 || make_fifo(l, err) < 0)
		return -1;
	root_mount_before(&l->root_mount, &l->cfg, l->rootfs);
	warn_config(&l->cfg);
	return 0;
}

/* The container's state for the launcher's hooks. */
static int launcher_hooks(struct launch *l, enum hook_kind kind, const char *status, pid_t pid,
			  bool warn_only, struct launch_error *err)
{
	struct launch_error ignored;
	_cleanup_free_ char *json = NULL;
	char bundle[PATH_MAX];
	struct hook_state st = { l->cli->id, pid, bundle, NULL };

	if (!l->cfg.hooks[kind].n)
		return 0;
	if (!realpath(l->cli->bundle, bundle))
		snprintf(bundle, sizeof(bundle), "%s", l->cli->bundle);
	if (l->cfg.annotations)
		st.annotations = json_object_to_json_string_ext(l->cfg.annotations, JSON_C_TO_STRING_PLAIN);
	if (hook_state_json(&st, status, &json) < 0)
		return err_sys(warn_only ? &ignored : err, "state for", config_hook_name(kind));
	if (warn_only) {
		hooks_run_warn(&l->cfg.hooks[kind], kind, json);
		return 0;
	}
	return hooks_run(&l->cfg.hooks[kind], kind, json, err);
}

static void launch_release(struct launch *l, bool keep_state)
{
	release_namespaces(l);
	early_discard(l);
	for (size_t i = 0; i < MAX_NS_JOINS; i++)
		if (l->join_fds[i] >= 0)
			close(l->join_fds[i]);
	if (l->fifo_fd >= 0)
		close(l->fifo_fd);
	if (!keep_state) {
		if (l->cg_made)
			cgroup_remove(&l->cg);
		root_mount_release(&l->root_mount);
		if (l->dir[0])
			state_remove(l->dir);
		if (l->spawned) /* the container was created, and is gone now */
			(void)launcher_hooks(l, HOOK_POSTSTOP, "stopped", 0, true, NULL);
	}
	if (l->has_seccomp)
		filter_free(&l->seccomp);
	config_free(&l->cfg);
	free(l->json);
}

/* ---- the container init ---- */

static _Noreturn void init_main(const struct launch *l, int sync_fd, int parent_end)
{
	struct launch_error err;
	struct init_args a = {
		&l->cfg, l->rootfs, l->cli->bundle, l->cli->preserve_fds, sync_fd,
		l->fifo_fd, l->join_fds, l->has_seccomp ? &l->seccomp : NULL, 0,
		l->has_cg ? &l->cg : NULL, l->cli->id,
	};

	close(parent_end); /* so the launcher's death reads as EOF here */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || sync_expect(sync_fd, SYNC_GO) < 0)
		_exit(EXIT_LAUNCH_FAILED);
	memset(&err, 0, sizeof(err));
	container_init(&a, &err);
	sync_send_error(sync_fd, &err);
	_exit(err.exit_code);
}

/* fork-like clone straight into the new namespaces: no helper exec, no
 * unshare-then-fork double step. The user and cgroup namespaces are made
 * by the init later (see sync.h). */
static pid_t clone_init(unsigned long flags)
{
	flags &= ~(unsigned long)(CLONE_NEWUSER | CLONE_NEWCGROUP);
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/*
 * Blocks until the go, without reading the wait fd: the byte is the launcher's. Either that fd
 * becomes readable (the byte, or end of file), or the launcher writes on the sync socket: when
 * the go is the byte alone and the launcher read it first, the wait fd never looks readable
 * here, so the launcher also sends SYNC_WAKE.
 */
static int await_go_ahead(int wait_fd, int sync_fd)
{
	struct pollfd p[2] = { { .fd = wait_fd, .events = POLLIN }, { .fd = sync_fd, .events = POLLIN } };
	int n;

	do
		n = poll(p, 2, -1);
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : -1;
}

/*
 * What a launcher waiting for its go byte, and its init cloned ahead, fault in while they wait
 * (see prefault_memory): enough for reading and parsing config.json and setting up. On a virtual
 * machine where a page fault costs tens of microseconds, this took the faults after the go from
 * 42 to 15 in the init and from 57 to 15 in the launcher: about half a millisecond.
 */
#define PREFAULT_STACK (64 * 1024)
#define PREFAULT_HEAP (256 * 1024)

/* An init cloned ahead: it reads its config itself, root and seccomp BPF come in the handoff. */
static _Noreturn void early_init_main(const struct launch *l, int sync_fd, int parent_end)
{
	struct handoff *h = l->handoff;
	char *json = NULL;
	struct launch_error err;
	struct config cfg;
	struct filter_prog seccomp = { 0 };
	struct cgroup cg;
	int no_joins[MAX_NS_JOINS];
	struct init_args a = {
		&cfg, h->root, l->cli->bundle, l->cli->preserve_fds, sync_fd, -1, no_joins,
		NULL, CLONE_NEWNS, NULL, l->cli->id,
	};

	close(parent_end); /* so the launcher's death reads as EOF here */
	if (l->cli->status_fd && l->cli->status_fd != l->cli->wait_fd)
		close((int)l->cli->status_fd); /* the caller's channels are the launcher's */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		_exit(EXIT_LAUNCH_FAILED);
	/* The loopback of its new network namespace does not depend on the bundle either: up now,
	 * it is found up when the setup brings it up. */
	(void)ns_loopback_up(&err);
	prefault_memory(PREFAULT_STACK, PREFAULT_HEAP);
	/*
	 * Woken by the go byte together with the launcher, rather than by the launcher once it has
	 * read config.json (one more wake-up, up to half a millisecond here), it reads config.json
	 * itself; the launcher uses it only if both read the same bytes. At end of file there is no
	 * bundle: it exits, or is killed first.
	 */
	if (await_go_ahead((int)l->cli->wait_fd, sync_fd) < 0)
		_exit(EXIT_LAUNCH_FAILED);
	close((int)l->cli->wait_fd);
	if (config_read(l->cli->bundle, &json, &err) < 0)
		_exit(EXIT_LAUNCH_FAILED);
	memset(&err, 0, sizeof(err));
	if (config_parse(json, &cfg, &err) == 0) {
		memcpy(h->config, json, strlen(json) + 1); /* config_read: at most CONFIG_MAX_SIZE */
		if (sync_send(sync_fd, SYNC_CONFIG, &err) < 0 || sync_expect(sync_fd, SYNC_GO) < 0)
			_exit(EXIT_LAUNCH_FAILED);
		/* the handoff is complete only now */
		seccomp.filter = (struct sock_filter *)h->bpf;
		seccomp.len = h->bpf_len;
		seccomp.flags = h->bpf_flags;
		a.seccomp = h->has_seccomp ? &seccomp : NULL;
		cg = h->cg;
		cg.res.devices = cfg.res.devices; /* its own parse of the same bytes */
		a.cgroup = h->has_cg ? &cg : NULL;
		container_init(&a, &err);
	}
	sync_send_error(sync_fd, &err);
	_exit(err.exit_code);
}

/* Best effort: when this fails, the init is cloned after the go as usual. */
static void clone_early(struct launch *l)
{
	struct launch_error ignored;
	struct handoff *h;
	int fds[2];

	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED)
		return;
	if (make_sync_pair(fds, l->cli->preserve_fds, &ignored) < 0) {
		munmap(h, sizeof(*h));
		return;
	}
	l->handoff = h;
	l->pid = clone_init(EARLY_FLAGS);
	if (l->pid == 0)
		early_init_main(l, fds[1], fds[0]);
	close(fds[1]);
	if (l->pid < 0) {
		l->pid = 0;
		close(fds[0]);
		munmap(h, sizeof(*h));
		l->handoff = NULL;
		return;
	}
	l->early_fd = fds[0];
}

/* The init cloned ahead has read and parsed config.json: the very bytes the launcher did? */
static bool early_ready(struct launch *l)
{
	struct launch_error ignored;

	return sync_recv(l->early_fd, &ignored) == SYNC_CONFIG &&
	       strcmp(l->handoff->config, l->json) == 0;
}

/* The init cloned ahead goes on: root and BPF into the handoff, then its sync socket. */
static int early_take(struct launch *l)
{
	struct handoff *h = l->handoff;
	int fd = l->early_fd;

	snprintf(h->root, sizeof(h->root), "%s", l->rootfs);
	h->has_cg = l->has_cg;
	h->cg = l->cg;
	h->has_seccomp = l->has_seccomp;
	if (l->has_seccomp) {
		memcpy(h->bpf, l->seccomp.filter, l->seccomp.len * sizeof(struct sock_filter));
		h->bpf_len = l->seccomp.len;
		h->bpf_flags = l->seccomp.flags;
	}
	l->early_fd = -1;
	return fd;
}

/* A new init, or the one cloned ahead. Returns the parent's end of its sync socket. */
static int start_init(struct launch *l, struct launch_error *err)
{
	int fds[2];

	if (l->early_fd >= 0 && early_ready(l))
		return early_take(l);
	early_discard(l);
	if (make_sync_pair(fds, l->cli->preserve_fds, err) < 0)
		return -1;
	l->pid = clone_init(l->cfg.clone_flags);
	if (l->pid == 0)
		init_main(l, fds[1], fds[0]);
	close(fds[1]);
	if (l->pid < 0) {
		l->pid = 0;
		close(fds[0]);
		return err_sys(err, "clone", "container init");
	}
	return fds[0];
}

/* ---- the parent's half ---- */

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_LAUNCH_FAILED;
}

/* Wait without reaping first, so the pid cannot be recycled while a
 * signal handler might still forward to it. */
static int wait_init(pid_t pid, struct launch_error *err)
{
	siginfo_t info;
	int status;

	while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			return err_sys(err, "wait for container", NULL);
	init_pid = 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_sys(err, "wait for container", NULL);
	return status_code(status);
}

static void kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	wait_init(pid, &(struct launch_error){ 0 });
}

/* Atomic: readers never see a half-written pid. */
static int write_pid_file(const char *path, pid_t pid, struct launch_error *err)
{
	char tmp[PATH_MAX], buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", pid);
	_cleanup_fd_ int fd = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return err_errno(err, ENAMETOOLONG, "write pid file", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, buf, (size_t)len) < 0)
		return err_sys(err, "write pid file", tmp);
	if (rename(tmp, path) < 0)
		return err_sys(err, "write pid file", path);
	return 0;
}

static int write_map(pid_t pid, const char *file, const struct id_map *maps, size_t n,
		     struct launch_error *err)
{
	char path[64], buf[MAX_ID_MAPS * 40] = "";
	_cleanup_fd_ int fd = -1;

	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%u %u %u\n",
			 maps[i].container_id, maps[i].host_id, maps[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf))
		return err_sys(err, "write", path);
	return 0;
}

static int write_state(struct launch *l, struct launch_error *err)
{
	struct state st;
	int rc;
	struct timespec ts;
	struct tm tm;

	memset(&st, 0, sizeof(st));
	snprintf(st.id, sizeof(st.id), "%s", l->cli->id);
	st.pid = l->pid;
	st.start_time = proc_start_time(l->pid);
	if (!realpath(l->cli->bundle, st.bundle))
		snprintf(st.bundle, sizeof(st.bundle), "%s", l->cli->bundle);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(st.created, sizeof(st.created), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(st.created + strlen(st.created), sizeof(st.created) - strlen(st.created),
		 ".%09ldZ", ts.tv_nsec);
	st.has_cgroup = l->has_cg;
	st.cgroup = l->cg;
	st.root_mount = l->root_mount;
	st.no_process = !l->cfg.args;
	/* what `state` and `delete` need once this process is gone (borrowed from the config) */
	if (l->cfg.annotations)
		st.annotations = (char *)json_object_to_json_string_ext(l->cfg.annotations, JSON_C_TO_STRING_PLAIN);
	st.hooks = (char *)config_late_hooks_json(&l->cfg);
	rc = state_write(l->dir, &st, err);
	free(st.hooks);
	return rc;
}

/* prestart and createRuntime, while the init waits before its root switch (see sync.h). */
static int create_hooks(struct launch *l, int sync_fd, struct launch_error *err)
{
	if (launcher_hooks(l, HOOK_PRESTART, "creating", l->pid, false, err) < 0 ||
	    launcher_hooks(l, HOOK_CREATE_RUNTIME, "creating", l->pid, false, err) < 0)
		return -1;
	return sync_send_value(sync_fd, SYNC_HOOKS_DONE, (uint32_t)l->pid, err);
}

/*
 * The cgroup is made and entered while the init sets up its mounts (a millisecond saved); the
 * init waits for SYNC_CGROUP before its cgroup namespace, and so before it can exec. If the
 * init failed first, its error is the cause to report.
 */
static int enter_cgroup(struct launch *l, int sync_fd, struct launch_error *err)
{
	l->cg_made = l->has_cg;
	if (l->has_cg && (cgroup_setup(&l->cg, err) < 0 || cgroup_enter(&l->cg, l->pid, err) < 0)) {
		kill(l->pid, SIGKILL);
		sync_take_error(sync_fd, err);
		return -1;
	}
	(void)sync_send(sync_fd, SYNC_CGROUP, err); /* a failure shows in the next recv */
	return 0;
}

/* Drive the handshake until the init exec'd (run) or is waiting (create).
 * Returns 0, or -1 with err set (the init is then killed by the caller). */
static int handshake(struct launch *l, int sync_fd, struct launch_error *err)
{
	if (sync_send(sync_fd, SYNC_GO, err) < 0 || enter_cgroup(l, sync_fd, err) < 0)
		return -1;
	for (;;) {
		int got = sync_recv(sync_fd, err);
		switch (got) {
		case SYNC_USERNS:
			if (write_map(l->pid, "uid_map", l->cfg.uid_maps, l->cfg.n_uid_maps, err) < 0 ||
			    write_map(l->pid, "gid_map", l->cfg.gid_maps, l->cfg.n_gid_maps, err) < 0)
				return -1;
			/* all made now, and the init waits for the go below: held before it could
			 * run to its exit (a quick process on a busy host did, unheld) */
			hold_namespaces(l);
			if (sync_send(sync_fd, SYNC_USERNS_DONE, err) < 0)
				return -1;
			continue;
		case SYNC_HOOKS:
			if (create_hooks(l, sync_fd, err) < 0)
				return -1;
			continue;
		case SYNC_CREATED:
			return l->create ? 0 : err_msg(err, "sync", NULL, "unexpected message from init");
		case 0:
			return l->create ? err_msg(err, "create", l->cli->id, "container init exited during setup") : 0;
		default: /* SYNC_ERROR (err filled) or -1 */
			return -1;
		}
	}
}

/* The one line per limit the worker maps to an error code (see README). */
static void report_events(const struct launch *l)
{
	uint64_t oom, pids;

	if (!l->has_cg)
		return;
	cgroup_events(&l->cg, &oom, &pids);
	if (oom)
		fprintf(stderr, "skiff-launch: %s: out of memory (memory limit %lld bytes)\n",
			l->cli->id, (long long)(l->cfg.res.has_memory ? l->cfg.res.memory_limit : -1));
	if (pids)
		fprintf(stderr, "skiff-launch: %s: process limit reached (pids limit %lld)\n",
			l->cli->id, (long long)(l->cfg.res.has_pids ? l->cfg.res.pids_limit : -1));
}

static int spawn(struct launch *l, struct launch_error *err)
{
	int sync_fd, rc;
	sigset_t old;

	if (!l->create)
		install_forwarding(&old);
	sync_fd = start_init(l, err);
	if (!l->create) {
		init_pid = l->pid;
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (sync_fd < 0)
		return -1;
	l->spawned = true;
	rc = handshake(l, sync_fd, err);
	close(sync_fd);
	if (rc == 0)
		hold_namespaces(l); /* without a user namespace, not done during the handshake */
	root_mount_after(&l->root_mount);
	if (rc == 0 && (write_state(l, err) < 0 ||
			(l->cli->pid_file && write_pid_file(l->cli->pid_file, l->pid, err) < 0)))
		rc = -1;
	if (rc < 0) {
		kill_and_reap(l->pid);
		root_mount_after(&l->root_mount); /* the init may have mounted until it died */
		return -1;
	}
	if (l->create)
		return 0;
	(void)launcher_hooks(l, HOOK_POSTSTART, "running", l->pid, true, err);
	rc = wait_init(l->pid, err);
	if (rc >= 0)
		report_events(l);
	return rc;
}

/*
 * --wait-fd: a launcher started ahead of need blocks here, before it reads the bundle, until
 * one byte arrives, so starting this process costs the caller nothing when the container is
 * wanted. End of file means it is not wanted: *go stays false, and the launcher exits having
 * set nothing up (an init cloned ahead is killed).
 */
static int await_go(const struct cli *cli, bool *go, struct launch_error *err)
{
	char b;
	ssize_t n;

	do
		n = read((int)cli->wait_fd, &b, 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_sys(err, "wait-fd", NULL);
	if (cli->wait_fd != cli->status_fd)
		close((int)cli->wait_fd);
	*go = n == 1;
	return 0;
}

/*
 * --status-fd: the caller learns the exit status as soon as the container is gone, without
 * waiting for the cgroup and the state to be removed and this process to exit (together a
 * millisecond or more). stdout and stderr are let go first, so once the caller also has end of
 * file on them, it has all the output, the limit reports included. The cleanup (namespace
 * teardown included, see hold_namespaces) then waits a moment and runs at the lowest priority:
 * the caller's answer is on its way to its own caller, through processes that need the CPU
 * more just then (on a 2-core node, about a millisecond of the answer's time).
 */
#define CLEANUP_DELAY_NS (20 * 1000 * 1000)

static void report_status(unsigned fd, int status)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d\n", status);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (null >= 0) {
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(null);
	}
	(void)write_all((int)fd, buf, (size_t)len);
	close((int)fd);
	(void)setpriority(PRIO_PROCESS, 0, 19);
	nanosleep(&(struct timespec){ 0, CLEANUP_DELAY_NS }, NULL);
}

static int launch(const struct cli *cli, bool create, struct launch_error *err)
{
	struct launch l;
	int rc = -1;

	memset(&l, 0, sizeof(l));
	l.cli = cli;
	l.create = create;
	l.fifo_fd = -1;
	l.early_fd = -1;
	for (size_t i = 0; i < MAX_NS_JOINS; i++)
		l.join_fds[i] = -1;
	if (cli->wait_fd) {
		bool go = false;

		if (!create) /* `create` needs its exec fifo before the clone */
			clone_early(&l);
		prefault_memory(PREFAULT_STACK, PREFAULT_HEAP);
		rc = await_go(cli, &go, err);
		if (rc < 0 || !go) {
			launch_release(&l, false);
			return rc;
		}
		if (l.early_fd >= 0) { /* in case the init missed the byte (see await_go_ahead) */
			struct launch_error ignored;

			(void)sync_send(l.early_fd, SYNC_WAKE, &ignored);
		}
		rc = -1;
	}
	if (prepare(&l, err) == 0)
		rc = spawn(&l, err);
	if (rc >= 0 && cli->status_fd)
		report_status(cli->status_fd, rc);
	launch_release(&l, create && rc == 0);
	return rc;
}

int cmd_run(const struct cli *cli, struct launch_error *err)
{
	return launch(cli, false, err);
}

int cmd_create(const struct cli *cli, struct launch_error *err)
{
	return launch(cli, true, err);
}
