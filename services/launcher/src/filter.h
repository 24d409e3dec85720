/* linux.seccomp: compiled with libseccomp in the launcher (never inside the
 * container), cached as BPF in the state root, loaded with seccomp(2). */
#ifndef SKIFF_FILTER_H
#define SKIFF_FILTER_H

#include <linux/filter.h>
#include <stdbool.h>

#include "util.h"

struct json_object;

struct filter_prog {
	struct sock_filter *filter; /* owned */
	unsigned short len;
	unsigned int flags;         /* SECCOMP_FILTER_FLAG_* */
	bool from_cache;
};

/* Compile the OCI linux.seccomp object. Errors name the field. */
int filter_compile(struct json_object *spec, struct filter_prog *out, struct launch_error *err);
/* Compile, or reuse the BPF cached under cache_dir (NULL: no cache). */
int filter_prepare(struct json_object *spec, const char *cache_dir, struct filter_prog *out,
		    struct launch_error *err);
/* Install the filter on the calling thread. */
int filter_load(const struct filter_prog *prog, struct launch_error *err);
void filter_free(struct filter_prog *prog);

#endif
