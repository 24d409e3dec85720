/* Command line: skiff-launch [global flags] <command> [flags] <args>. */
#ifndef SKIFF_OPTIONS_H
#define SKIFF_OPTIONS_H

#include <stdbool.h>

#include "util.h"

struct cli {
	/* global */
	const char *root;        /* state directory (default /run/skiff-launch) */
	bool version;
	bool help;
	const char *command;     /* NULL when only --version/--help was given */
	/* run */
	const char *bundle;
	const char *pid_file;
	unsigned preserve_fds;
	unsigned wait_fd;        /* run/create: wait for a byte on this fd first; 0 = no wait */
	unsigned status_fd;      /* run/create: exit status written here before cleanup; 0 = none */
	const char *id;          /* NULL for spec/features */
	const char *signal;      /* kill: the signal argument, NULL for the default */
	bool force;              /* delete --force */
	bool all;                /* kill --all: every process in the container's cgroup */
	bool rootless;           /* spec --rootless (refused) */
};

int cli_parse(int argc, char *const argv[], struct cli *cli, struct launch_error *err);

/* Container IDs become file names later: letters, digits and _ + - . only. */
bool cli_valid_id(const char *id);

extern const char cli_usage[];

#endif
