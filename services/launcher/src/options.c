#include "options.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PRESERVE_FDS (1u << 20)

const char cli_usage[] =
	"usage: skiff-launch [--root DIR] COMMAND ...\n"
	"  run [--bundle DIR] [--pid-file FILE] [--preserve-fds N] [--wait-fd N] [--status-fd N] ID\n"
	"                           create, start and wait for the container\n"
	"  create [--bundle DIR] [--pid-file FILE] [--preserve-fds N] [--wait-fd N] [--status-fd N] ID\n"
	"  start ID\n"
	"  state ID                 print the state as JSON\n"
	"  kill [--all] ID [SIGNAL] default SIGTERM; a name (KILL, SIGKILL) or a number\n"
	"  delete [--force] ID\n"
	"  spec [--bundle DIR]      write a default config.json (to stdout with --bundle -)\n"
	"  features                 print what this runtime supports as JSON\n"
	"  --version | --help\n";

enum flag_kind { FLAG_BOOL, FLAG_STRING, FLAG_UINT };

struct flag {
	const char *name;   /* long name, given as --name or -name */
	char short_name;    /* 0 when none */
	enum flag_kind kind;
	size_t offset;      /* field in struct cli */
};

static const struct flag global_flags[] = {
	{ "root", 0, FLAG_STRING, offsetof(struct cli, root) },
	{ "version", 'v', FLAG_BOOL, offsetof(struct cli, version) },
	{ "help", 'h', FLAG_BOOL, offsetof(struct cli, help) },
	{ NULL, 0, 0, 0 },
};

static const struct flag run_flags[] = {
	{ "bundle", 'b', FLAG_STRING, offsetof(struct cli, bundle) },
	{ "preserve-fds", 0, FLAG_UINT, offsetof(struct cli, preserve_fds) },
	{ "pid-file", 0, FLAG_STRING, offsetof(struct cli, pid_file) },
	{ "wait-fd", 0, FLAG_UINT, offsetof(struct cli, wait_fd) },
	{ "status-fd", 0, FLAG_UINT, offsetof(struct cli, status_fd) },
	{ NULL, 0, 0, 0 },
};

static const struct flag no_flags[] = { { NULL, 0, 0, 0 } };

static const struct flag delete_flags[] = {
	{ "force", 'f', FLAG_BOOL, offsetof(struct cli, force) },
	{ NULL, 0, 0, 0 },
};

static const struct flag kill_flags[] = {
	{ "all", 'a', FLAG_BOOL, offsetof(struct cli, all) },
	{ NULL, 0, 0, 0 },
};

static const struct flag spec_flags[] = {
	{ "bundle", 'b', FLAG_STRING, offsetof(struct cli, bundle) },
	{ "rootless", 0, FLAG_BOOL, offsetof(struct cli, rootless) },
	{ NULL, 0, 0, 0 },
};

static const struct command_spec {
	const char *name;
	const struct flag *flags;
	int min_args, max_args; /* positional: ID, then kill's SIGNAL */
} commands[] = {
	{ "run", run_flags, 1, 1 },
	{ "create", run_flags, 1, 1 },
	{ "start", no_flags, 1, 1 },
	{ "state", no_flags, 1, 1 },
	{ "kill", kill_flags, 1, 2 },
	{ "delete", delete_flags, 1, 1 },
	{ "spec", spec_flags, 0, 0 },
	{ "features", no_flags, 0, 0 },
};

static const struct flag *find_flag(const struct flag *flags, const char *name, size_t len)
{
	for (const struct flag *f = flags; f->name; f++)
		if ((strlen(f->name) == len && strncmp(f->name, name, len) == 0) ||
		    (len == 1 && f->short_name == name[0]))
			return f;
	return NULL;
}

static int set_flag(const struct flag *f, const char *value, struct cli *cli,
		    const char *scope, struct launch_error *err)
{
	char *field = (char *)cli + f->offset, *end;
	unsigned long n;

	if (f->kind == FLAG_BOOL) {
		*(bool *)field = true;
		return 0;
	}
	if (f->kind == FLAG_STRING) {
		if (!*value)
			return err_msg(err, scope, NULL, "--%s: must not be empty", f->name);
		*(const char **)field = value;
		return 0;
	}
	errno = 0;
	n = strtoul(value, &end, 10);
	if (errno || end == value || *end || value[0] == '-' || n > MAX_PRESERVE_FDS)
		return err_msg(err, scope, NULL, "--%s: must be an integer from 0 to %u",
			       f->name, MAX_PRESERVE_FDS);
	*(unsigned *)field = (unsigned)n;
	return 0;
}

/* Parse argv[*i], a flag, and the value after it when it takes one. */
static int parse_flag(const struct flag *flags, int argc, char *const argv[], int *i,
		      struct cli *cli, const char *scope, struct launch_error *err)
{
	const char *arg = argv[*i];
	const char *name = arg + (arg[1] == '-' ? 2 : 1);
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct flag *f = find_flag(flags, name, len);
	const char *value = eq ? eq + 1 : NULL;

	if (!f)
		return err_msg(err, scope, NULL, "unknown flag %.*s", (int)(name - arg + len), arg);
	if (f->kind == FLAG_BOOL && value)
		return err_msg(err, scope, NULL, "--%s takes no value", f->name);
	if (f->kind != FLAG_BOOL && !value) {
		if (*i + 1 >= argc)
			return err_msg(err, scope, NULL, "--%s needs a value", f->name);
		value = argv[++*i];
	}
	++*i;
	return set_flag(f, value, cli, scope, err);
}

static bool is_flag(const char *arg)
{
	return arg[0] == '-' && arg[1] != '\0';
}

/* Flags until the first positional argument or "--". */
static int parse_flags(const struct flag *flags, int argc, char *const argv[], int *i,
		       struct cli *cli, const char *scope, struct launch_error *err)
{
	while (*i < argc && is_flag(argv[*i])) {
		if (strcmp(argv[*i], "--") == 0) {
			++*i;
			break;
		}
		if (parse_flag(flags, argc, argv, i, cli, scope, err) < 0)
			return -1;
	}
	return 0;
}

bool cli_valid_id(const char *id)
{
	if (!*id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strlen(id) > 1024)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789_+-.") == strlen(id);
}

static const struct command_spec *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int cli_parse(int argc, char *const argv[], struct cli *cli, struct launch_error *err)
{
	const struct command_spec *cmd;
	int i = 1;

	memset(cli, 0, sizeof(*cli));
	cli->bundle = ".";
	if (parse_flags(global_flags, argc, argv, &i, cli, "usage", err) < 0)
		return -1;
	if (cli->version || cli->help)
		return 0;
	if (i >= argc)
		return err_msg(err, "usage", NULL, "missing command (try --help)");
	cli->command = argv[i++];
	cmd = find_command(cli->command);
	if (!cmd)
		return err_msg(err, "usage", NULL, "unknown command \"%s\" (try --help)", cli->command);
	if (parse_flags(cmd->flags, argc, argv, &i, cli, cli->command, err) < 0)
		return -1;
	if (cmd->max_args == 0 && argc - i != 0)
		return err_msg(err, cli->command, NULL, "takes no arguments, got %d", argc - i);
	if (cmd->max_args == 0)
		return 0;
	if (argc - i < cmd->min_args || argc - i > cmd->max_args)
		return err_msg(err, cli->command, NULL, cmd->max_args == 1
			       ? "expected exactly one container ID, got %d arguments"
			       : "expected a container ID and an optional signal, got %d arguments", argc - i);
	if (cli->wait_fd && cli->wait_fd < 3 + cli->preserve_fds)
		return err_msg(err, cli->command, NULL, "--wait-fd must be 3 or more and not among the --preserve-fds");
	if (cli->status_fd && cli->status_fd < 3 + cli->preserve_fds)
		return err_msg(err, cli->command, NULL, "--status-fd must be 3 or more and not among the --preserve-fds");
	cli->id = argv[i];
	if (!cli_valid_id(cli->id))
		return err_msg(err, cli->command, NULL, "invalid container ID \"%s\"", cli->id);
	if (argc - i == 2)
		cli->signal = argv[i + 1];
	return 0;
}
