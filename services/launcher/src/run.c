#define _GNU_SOURCE
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "process.h"
#include "sync.h"

static const int forwarded_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

/* Written before signals are unblocked, cleared before the init is reaped,
 * so a forwarded signal never reaches a recycled pid. */
static volatile sig_atomic_t init_pid;

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

/* Keep the sync socket clear of the --preserve-fds range: the init clears
 * CLOEXEC there, which would leak the socket into the container. */
static int lift_fd(int *fd, unsigned preserve, struct launch_error *err)
{
	int moved;

	if ((unsigned)*fd >= 3 + preserve)
		return 0;
	moved = fcntl(*fd, F_DUPFD_CLOEXEC, (int)(3 + preserve));
	if (moved < 0)
		return err_sys(err, "dup sync socket", NULL);
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

static _Noreturn void init_main(const struct init_args *a, int parent_end)
{
	struct launch_error err;

	close(parent_end); /* so the launcher's death reads as EOF here */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || sync_wait_go(a->sync_fd) < 0)
		_exit(EXIT_LAUNCH_FAILED);
	memset(&err, 0, sizeof(err));
	container_init(a, &err);
	sync_send_error(a->sync_fd, &err);
	_exit(err.exit_code);
}

/* fork-like clone straight into the new namespaces: no helper exec, no
 * unshare-then-fork double step. */
static pid_t clone_init(unsigned long flags)
{
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

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

/* Parent half of the handshake in sync.h. */
static int supervise(pid_t pid, int sync_fd, const struct cli *cli, struct launch_error *err)
{
	int got;

	if (sync_send_go(sync_fd, err) < 0) {
		kill(pid, SIGKILL);
		wait_init(pid, &(struct launch_error){ 0 });
		return -1;
	}
	got = sync_wait_exec(sync_fd, err);
	if (got != 0) {
		if (got < 0)
			kill(pid, SIGKILL);
		wait_init(pid, &(struct launch_error){ 0 });
		return -1;
	}
	if (cli->pid_file && write_pid_file(cli->pid_file, pid, err) < 0) {
		kill(pid, SIGKILL);
		wait_init(pid, &(struct launch_error){ 0 });
		return -1;
	}
	return wait_init(pid, err);
}

static int spawn(const struct config *cfg, const struct cli *cli, const char *root,
		 struct launch_error *err)
{
	int fds[2];
	sigset_t old;
	struct init_args args = { cfg, root, cli->bundle, cli->preserve_fds, -1 };
	pid_t pid;
	int rc;

	if (make_sync_pair(fds, cli->preserve_fds, err) < 0)
		return -1;
	args.sync_fd = fds[1];
	install_forwarding(&old);
	pid = clone_init(cfg->clone_flags);
	if (pid == 0)
		init_main(&args, fds[0]);
	if (pid < 0) {
		err_sys(err, "clone", "container init");
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	close(fds[1]);
	init_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	rc = supervise(pid, fds[0], cli, err);
	close(fds[0]);
	return rc;
}

int cmd_run(const struct cli *cli, struct launch_error *err)
{
	struct config cfg;
	char root[PATH_MAX];
	int rc = -1;

	if (config_load(cli->bundle, &cfg, err) == 0 &&
	    resolve_root(&cfg, cli->bundle, root, err) == 0)
		rc = spawn(&cfg, cli, root, err);
	config_free(&cfg);
	return rc;
}
