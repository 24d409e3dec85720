#include <stdio.h>

#include "check.h"

int check_failures;
static int passed, failed;

void check_run(const char *name, void (*fn)(const void *arg), const void *arg)
{
	check_failures = 0;
	fn(arg);
	if (check_failures) {
		failed++;
		fprintf(stderr, "FAIL %s\n", name);
	} else {
		passed++;
	}
}

int main(void)
{
	test_config();
	test_resolve();
	test_options();
	test_cgroup();
	test_state();
	test_sync();
	test_devices();
	printf("launcher: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
