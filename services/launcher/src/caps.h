/* Capability names and applying the five OCI capability sets. */
#ifndef SKIFF_CAPS_H
#define SKIFF_CAPS_H

#include <stdint.h>

#include "config.h"

/* Capability number for "CAP_SYS_ADMIN", or -1 when unknown. */
int cap_from_name(const char *name);
/* Name of capability n, or NULL. */
const char *cap_name(int n);
/* Number of names known to the launcher (last capability + 1). */
int cap_count(void);

/* Drop the bounding set to caps[BOUNDING] (needs CAP_SETPCAP; call while
 * still privileged). */
int caps_drop_bounding(const uint64_t caps[CAP_SET_COUNT], struct launch_error *err);
/* Set effective/permitted/inheritable and the ambient set (after the uid
 * switch, which ran with PR_SET_KEEPCAPS). */
int caps_apply(const uint64_t caps[CAP_SET_COUNT], struct launch_error *err);

#endif
