/* The container init: everything between clone() and execve(). */
#ifndef SKIFF_PROCESS_H
#define SKIFF_PROCESS_H

#include "config.h"
#include "cgroup.h"
#include "filter.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct init_args {
	const struct config *cfg;
	const char *root;        /* absolute host path of root.path */
	const char *bundle;
	unsigned preserve_fds;   /* fds 3 .. 3+n-1 are passed to the process */
	int sync_fd;             /* init's end of the sync socket */
	int fifo_fd;             /* `create`: exec fifo to block on until `start`; -1 for run */
	const int *join_fds;     /* fds of cfg->joins (pid ones are joined by the parent) */
	const struct filter_prog *seccomp; /* NULL when the config has none */
	unsigned long unshare_flags; /* CLONE_NEW* the init makes itself first (cloned ahead: NEWNS) */
	const struct cgroup *cgroup; /* the container's cgroup as planned; NULL when it has none */
	const char *id;          /* the container ID, for the hooks' state */
};

/* Set the container up and exec process.args. Returns only on failure,
 * with err->exit_code 125 (setup), 126 (cannot exec) or 127 (not found). */
int container_init(const struct init_args *a, struct launch_error *err);

/* execve() args[0], searching PATH from the config env when it has no '/'. */
int exec_process(const struct config *cfg, struct launch_error *err);

#endif
