/* skiff-launch: OCI-style container launcher for Skiff functions.
 * Only main() prints errors and picks the process exit code. */
#include <stdio.h>
#include <string.h>

#include "options.h"
#include "run.h"
#include "util.h"

#define SKIFF_LAUNCH_VERSION "0.1.0"
#define OCI_SPEC_VERSION "1.0.2"

static const struct command {
	const char *name;
	int (*run)(const struct cli *cli, struct launch_error *err);
} commands[] = {
	{ "run", cmd_run },
	{ "create", cmd_create },
	{ "start", cmd_start },
	{ "state", cmd_state },
	{ "kill", cmd_kill },
	{ "delete", cmd_delete },
	{ "spec", cmd_spec },
	{ "features", cmd_features },
};

static int fail(const struct launch_error *err)
{
	char msg[PATH_MAX + 512];

	err_format(err, msg, sizeof(msg));
	fprintf(stderr, "skiff-launch: %s\n", msg);
	return err->exit_code ? err->exit_code : EXIT_LAUNCH_FAILED;
}

int main(int argc, char *argv[])
{
	struct launch_error err = { 0 };
	struct cli cli;

	if (cli_parse(argc, argv, &cli, &err) < 0)
		return fail(&err);
	if (cli.version) {
		printf("skiff-launch version %s\nspec: %s\n", SKIFF_LAUNCH_VERSION, OCI_SPEC_VERSION);
		return 0;
	}
	if (cli.help) {
		fputs(cli_usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, cli.command) == 0) {
			int rc = commands[i].run(&cli, &err);
			return rc < 0 ? fail(&err) : rc;
		}
	}
	err_msg(&err, "usage", NULL, "unknown command \"%s\"", cli.command);
	return fail(&err);
}
