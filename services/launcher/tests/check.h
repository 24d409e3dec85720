/* A tiny test harness: each case is a function; CHECK records failures. */
#ifndef SKIFF_CHECK_H
#define SKIFF_CHECK_H

#include <stdio.h>

extern int check_failures; /* failures within the current case */

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			check_failures++;                                        \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #cond);                                \
		}                                                                \
	} while (0)

#define CHECK_STR(a, b)                                                            \
	do {                                                                       \
		const char *a_ = (a), *b_ = (b);                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                           \
			check_failures++;                                          \
			fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__,   \
				__LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
		}                                                                  \
	} while (0)

/* Run one named case; counts it as passed or failed. */
void check_run(const char *name, void (*fn)(const void *arg), const void *arg);

void test_config(void);
void test_resolve(void);
void test_options(void);
void test_cgroup(void);
void test_state(void);
void test_sync(void);
void test_devices(void);

#endif
