#define _GNU_SOURCE
#include "hooks.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define OCI_VERSION "1.0.2"

int hook_state_json(const struct hook_state *st, const char *status, char **out)
{
	struct json_object *o = json_object_new_object(), *ann = NULL;
	int rc = -1;

	if (!o)
		return -1;
	json_object_object_add(o, "ociVersion", json_object_new_string(OCI_VERSION));
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "pid", json_object_new_int(st->pid));
	json_object_object_add(o, "bundle", json_object_new_string(st->bundle));
	if (st->annotations && (ann = json_tokener_parse(st->annotations)))
		json_object_object_add(o, "annotations", ann);
	*out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	rc = *out ? 0 : -1;
	json_object_put(o);
	return rc;
}

/* The hook's stdin: the state, in a memory file (a pipe could fill up if the hook never reads). */
static int state_stdin(const char *state_json)
{
	int fd = memfd_create("oci-state", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write_all(fd, state_json, strlen(state_json)) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static _Noreturn void hook_exec(const struct hook_cfg *h, int in)
{
	static const char *const no_env[] = { NULL };
	const char *argv0[] = { h->path, NULL };

	reset_signals();
	/* its own process group, so that a timeout ends whatever it started too */
	if (setpgid(0, 0) < 0 || dup2(in, STDIN_FILENO) < 0)
		_exit(127);
	(void)syscall(SYS_close_range, 3U, ~0U, 0U);
	execve(h->path, (char *const *)(h->args && h->args[0] ? h->args : argv0),
	       (char *const *)(h->env ? h->env : no_env));
	_exit(127);
}

/* Wait for the hook; past its timeout it is killed and *timed_out set. */
static int hook_wait(pid_t pid, int timeout_s, int *status, bool *timed_out, struct launch_error *err)
{
	_cleanup_fd_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	*timed_out = false;
	if (pidfd >= 0 && timeout_s > 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int n;

		do
			n = poll(&p, 1, timeout_s * 1000);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			kill(-pid, SIGKILL);
			*timed_out = true;
		}
	}
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return err_sys(err, "wait for hook", NULL);
	return 0;
}

static int hook_run(const struct hook_cfg *h, const char *field, const char *state_json,
		    struct launch_error *err)
{
	_cleanup_fd_ int in = state_stdin(state_json);
	bool timed_out;
	int status;
	pid_t pid;

	if (in < 0)
		return err_sys(err, "state for", field);
	pid = fork();
	if (pid < 0)
		return err_sys(err, "fork for", field);
	if (pid == 0)
		hook_exec(h, in);
	if (hook_wait(pid, h->timeout, &status, &timed_out, err) < 0)
		return -1;
	if (timed_out)
		return err_msg(err, field, h->path, "timed out after %d s", h->timeout);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return err_msg(err, field, h->path, "could not be run (exit status 127)");
	if (WIFEXITED(status))
		return err_msg(err, field, h->path, "exited with status %d", WEXITSTATUS(status));
	return err_msg(err, field, h->path, "killed by signal %d", WTERMSIG(status));
}

int hooks_run(const struct hook_list *list, enum hook_kind kind, const char *state_json,
	      struct launch_error *err)
{
	char field[48];

	for (size_t i = 0; i < list->n; i++) {
		snprintf(field, sizeof(field), "hooks.%s[%zu]", config_hook_name(kind), i);
		if (hook_run(&list->hooks[i], field, state_json, err) < 0)
			return -1;
	}
	return 0;
}

void hooks_run_warn(const struct hook_list *list, enum hook_kind kind, const char *state_json)
{
	struct launch_error err;
	char field[48], msg[PATH_MAX + 512];

	for (size_t i = 0; i < list->n; i++) {
		snprintf(field, sizeof(field), "hooks.%s[%zu]", config_hook_name(kind), i);
		if (hook_run(&list->hooks[i], field, state_json, &err) < 0) {
			err_format(&err, msg, sizeof(msg));
			fprintf(stderr, "skiff-launch: warning: %s\n", msg);
		}
	}
}
