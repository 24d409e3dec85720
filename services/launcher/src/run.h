/* The `run` command: create the container, wait for it, report its status. */
#ifndef SKIFF_RUN_H
#define SKIFF_RUN_H

#include "options.h"

/* Returns the exit code to use (container status, 128+signal) or -1 with
 * err describing a launcher failure (err->exit_code 125/126/127). */
int cmd_run(const struct cli *cli, struct launch_error *err);

#endif
