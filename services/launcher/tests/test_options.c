#include <string.h>

#include "check.h"
#include "options.h"

#define ARGV(...) ((char *const[]){ "skiff-launch", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "skiff-launch", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cli, err, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), cli, err)

static void run_flags(const void *arg)
{
	struct launch_error err = { 0 };
	struct cli cli;

	(void)arg;
	CHECK(PARSE(&cli, &err, "run", "--bundle", "/b", "--pid-file", "/p", "--preserve-fds", "2", "fn-1") == 0);
	CHECK_STR(cli.command, "run");
	CHECK_STR(cli.bundle, "/b");
	CHECK_STR(cli.pid_file, "/p");
	CHECK(cli.preserve_fds == 2);
	CHECK(cli.wait_fd == 0);
	CHECK_STR(cli.id, "fn-1");
	CHECK(cli.status_fd == 0);
	CHECK(PARSE(&cli, &err, "run", "--preserve-fds", "1", "--wait-fd", "4", "--status-fd", "4", "fn-2") == 0);
	CHECK(cli.wait_fd == 4);
	CHECK(cli.status_fd == 4);
}

static void flag_spellings(const void *arg)
{
	struct launch_error err = { 0 };
	struct cli cli;

	(void)arg;
	CHECK(PARSE(&cli, &err, "--root", "/r", "run", "-b", "/x", "id") == 0);
	CHECK_STR(cli.root, "/r");
	CHECK_STR(cli.bundle, "/x");
	CHECK(PARSE(&cli, &err, "--root=/r2", "run", "--bundle=/y", "--preserve-fds=3", "id") == 0);
	CHECK_STR(cli.root, "/r2");
	CHECK_STR(cli.bundle, "/y");
	CHECK(cli.preserve_fds == 3);
	CHECK(PARSE(&cli, &err, "run", "-b=/z", "--", "id") == 0);
	CHECK_STR(cli.bundle, "/z");
	CHECK(PARSE(&cli, &err, "run", "id") == 0);
	CHECK_STR(cli.bundle, ".");
	CHECK(cli.pid_file == NULL && cli.preserve_fds == 0);
	CHECK(PARSE(&cli, &err, "--version") == 0 && cli.version);
	CHECK(PARSE(&cli, &err, "-h") == 0 && cli.help);
}

struct bad {
	int argc;
	char *const *argv;
	const char *message;
};

#define BAD(msg, ...) { ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), msg }

static const struct bad bad_cases[] = {
	BAD("usage: unknown command \"frob\" (try --help)", "frob", "id"),
	BAD("usage: missing command (try --help)", "--root", "/r"),
	BAD("usage: unknown flag --nope", "--nope", "run", "id"),
	BAD("run: unknown flag --nope", "run", "--nope", "id"),
	BAD("run: --bundle needs a value", "run", "--bundle"),
	BAD("run: expected exactly one container ID, got 0 arguments", "run"),
	BAD("run: expected exactly one container ID, got 2 arguments", "run", "a", "b"),
	BAD("run: --preserve-fds: must be an integer from 0 to 1048576", "run", "--preserve-fds", "x", "id"),
	BAD("run: --preserve-fds: must be an integer from 0 to 1048576", "run", "--preserve-fds=-1", "id"),
	BAD("run: invalid container ID \"../x\"", "run", "../x"),
	BAD("run: --wait-fd must be 3 or more and not among the --preserve-fds", "run", "--wait-fd", "2", "id"),
	BAD("create: --wait-fd must be 3 or more and not among the --preserve-fds", "create", "--preserve-fds", "2", "--wait-fd", "4", "id"),
	BAD("run: --status-fd must be 3 or more and not among the --preserve-fds", "run", "--preserve-fds", "1", "--status-fd", "3", "id"),
	BAD("usage: --version takes no value", "--version=1"),
};

static void bad_option(const void *arg)
{
	const struct bad *b = arg;
	struct launch_error err = { 0 };
	char msg[PATH_MAX + 512];
	struct cli cli;

	CHECK(cli_parse(b->argc, b->argv, &cli, &err) < 0);
	err_format(&err, msg, sizeof(msg));
	CHECK_STR(msg, b->message);
	CHECK(err.exit_code == EXIT_LAUNCH_FAILED);
}

static void ids(const void *arg)
{
	(void)arg;
	CHECK(cli_valid_id("fn_1.2+x-y"));
	CHECK(!cli_valid_id(""));
	CHECK(!cli_valid_id(".."));
	CHECK(!cli_valid_id("a/b"));
	CHECK(!cli_valid_id("a b"));
}

static void lifecycle_commands(const void *arg);

void test_options(void)
{
	check_run("options: lifecycle commands", lifecycle_commands, NULL);
	check_run("options: run flags", run_flags, NULL);
	check_run("options: flag spellings", flag_spellings, NULL);
	check_run("options: container IDs", ids, NULL);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char name[600];
		snprintf(name, sizeof(name), "options: rejects (%s)", bad_cases[i].message);
		check_run(name, bad_option, &bad_cases[i]);
	}
}

static void lifecycle_commands(const void *arg)
{
	struct launch_error err = { 0 };
	struct cli cli;

	(void)arg;
	CHECK(PARSE(&cli, &err, "kill", "fn", "KILL") == 0);
	CHECK_STR(cli.command, "kill");
	CHECK_STR(cli.id, "fn");
	CHECK_STR(cli.signal, "KILL");
	CHECK(PARSE(&cli, &err, "kill", "fn") == 0 && cli.signal == NULL);
	CHECK(PARSE(&cli, &err, "kill", "fn", "9", "extra") < 0);
	CHECK(PARSE(&cli, &err, "delete", "--force", "fn") == 0 && cli.force);
	CHECK(PARSE(&cli, &err, "delete", "-f", "fn") == 0 && cli.force);
	CHECK(PARSE(&cli, &err, "create", "--bundle", "/b", "--pid-file", "/p", "fn") == 0);
	CHECK_STR(cli.pid_file, "/p");
	CHECK(PARSE(&cli, &err, "start", "fn") == 0 && PARSE(&cli, &err, "state", "fn") == 0);
	CHECK(PARSE(&cli, &err, "start") < 0);
	CHECK(PARSE(&cli, &err, "features") == 0 && cli.id == NULL);
	CHECK(PARSE(&cli, &err, "features", "x") < 0);
	CHECK(PARSE(&cli, &err, "spec", "--bundle", "-") == 0);
	CHECK(PARSE(&cli, &err, "start", "--force", "fn") < 0);
	CHECK(PARSE(&cli, &err, "pause", "fn") < 0);
}
