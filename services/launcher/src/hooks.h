/* OCI hooks: programs run at points of the lifecycle with the container's state on stdin.
 *
 *   prestart, createRuntime  launcher, during create, once the init's namespaces exist and its
 *                            mounts are made, before the root switch; status "creating"
 *   createContainer          the init, right after them, in the container's namespaces (its
 *                            user namespace is made later), before the root switch; "creating"
 *   startContainer           the init, at start, as the container's user, before the exec;
 *                            "created"
 *   poststart                launcher (`run`) or `start`, once the process is exec'd; "running"
 *   poststop                 launcher (`run`) or `delete`, once the container is gone; "stopped"
 *
 * A failing prestart, createRuntime, createContainer or startContainer hook fails the container;
 * a failing poststart or poststop hook is reported on stderr and the lifecycle goes on. */
#ifndef SKIFF_HOOKS_H
#define SKIFF_HOOKS_H

#include <sys/types.h>

#include "config.h"

/* What a hook is told: the container's state. */
struct hook_state {
	const char *id;
	pid_t pid;               /* 0 once stopped */
	const char *bundle;      /* absolute */
	const char *annotations; /* a JSON object, or NULL */
};

/* The state JSON for status (e.g. "creating") into *out (malloc'd). */
int hook_state_json(const struct hook_state *st, const char *status, char **out);

/* Run each hook of the list in order; stop at the first failure. */
int hooks_run(const struct hook_list *list, enum hook_kind kind, const char *state_json,
	      struct launch_error *err);
/* Run each hook of the list; a failure is a warning on stderr, never an error. */
void hooks_run_warn(const struct hook_list *list, enum hook_kind kind, const char *state_json);

#endif
