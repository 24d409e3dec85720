/* Container commands: run/create (run.c) and start/state/kill/delete/spec/
 * features (lifecycle.c). Each returns the exit code to use, or -1 with err
 * describing a launcher failure (err->exit_code 125/126/127). */
#ifndef SKIFF_RUN_H
#define SKIFF_RUN_H

#include "options.h"

int cmd_run(const struct cli *cli, struct launch_error *err);
int cmd_create(const struct cli *cli, struct launch_error *err);
int cmd_start(const struct cli *cli, struct launch_error *err);
int cmd_state(const struct cli *cli, struct launch_error *err);
int cmd_kill(const struct cli *cli, struct launch_error *err);
int cmd_delete(const struct cli *cli, struct launch_error *err);
int cmd_spec(const struct cli *cli, struct launch_error *err);
int cmd_features(const struct cli *cli, struct launch_error *err);

/* The state root of the command line (--root or the default). */
const char *state_root(const struct cli *cli);

#endif
