/* Container state under the state root: <root>/<id>/state.json, plus the
 * exec fifo of a created-but-not-started container. */
#ifndef SKIFF_STATE_H
#define SKIFF_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "rootfs.h"
#include "util.h"

#define DEFAULT_STATE_ROOT "/run/skiff-launch"
#define STATE_FILE "state.json"
#define EXEC_FIFO "exec.fifo"

struct state {
	char id[256];
	pid_t pid;
	uint64_t start_time;      /* /proc/<pid>/stat field 22: guards against pid reuse */
	char bundle[PATH_MAX];
	char created[64];         /* RFC 3339 */
	bool has_cgroup;
	struct cgroup cgroup;
	struct root_mount root_mount; /* .id 0: none */
	bool no_process;          /* created from a config without a process: cannot be started */
	char *annotations;        /* JSON object text, NULL when none (owned) */
	char *hooks;              /* the config's poststart and poststop hooks, a JSON object
				   * {"poststart": [...], "poststop": [...]}, NULL when none (owned) */
};

/* <root>/<id> into buf. */
int state_dir(char *buf, size_t len, const char *root, const char *id);
int state_write(const char *dir, const struct state *st, struct launch_error *err);
int state_read(const char *dir, struct state *st, struct launch_error *err);
void state_free(struct state *st);
/* "created", "running" or "stopped", from the pid, its start time and the fifo. */
const char *state_status(const char *dir, const struct state *st);
/* Start time of pid from /proc, 0 when it is gone. */
uint64_t proc_start_time(pid_t pid);
/* Remove dir and the files the launcher puts in it. */
int state_remove(const char *dir);

/* "KILL", "SIGKILL", "9", "sigterm", "RTMIN+2": the number, or -1. */
int signal_parse(const char *s);

#endif
