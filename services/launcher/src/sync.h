/* Parent <-> container init handshake over a SOCK_SEQPACKET|SOCK_CLOEXEC
 * socketpair. One message per packet; the init's end closes itself on exec.
 *
 *   launcher (parent)                         container init (child)
 *   -----------------                         ----------------------
 *   state dir, seccomp BPF (cache)
 *   socketpair(CLOEXEC)
 *   clone(CLONE_NEW{NS,PID,NET,IPC,UTS}) -----> prctl(PDEATHSIG, SIGKILL)
 *                                               recv()  (blocks)
 *   send SYNC_GO -----------------------------> got GO: parent was alive after
 *   cgroup: create, limits, write pid to        PDEATHSIG was armed; setns()
 *   cgroup.procs (the init goes on meanwhile)   joins, oom_score_adj, lo up,
 *                                               hostname, sysctls, mounts,
 *                                               /dev, masked and read-only
 *                                               paths, pivot_root
 *   send SYNC_CGROUP -------------------------> recv() (before the mounts
 *                                               instead when one is a cgroup
 *                                               fs); devices, masks
 *                          with hooks (createRuntime, prestart, createContainer, startContainer):
 *   recv() <----------------------------------- send SYNC_HOOKS
 *   prestart, createRuntime hooks
 *   send SYNC_HOOKS_DONE { init's pid } ------> createContainer hooks
 *                                               pivot_root; unshare(CLONE_NEWCGROUP)
 *                                               (inside the cgroup now), rlimits
 *                                                         -- all as host root
 *                                               unshare(CLONE_NEWUSER)
 *   recv() <----------------------------------- send SYNC_USERNS
 *   write /proc/<pid>/{uid,gid}_map
 *   send SYNC_USERNS_DONE --------------------> user, groups, bounding set,
 *                                               capabilities, no_new_privs,
 *                                               fds, cwd check
 *                          `create` only:
 *   recv() <----------------------------------- send SYNC_CREATED; block reading
 *   write state + pid file, exit 0              the exec fifo until `start`
 *                                               seccomp filter, execve()
 *                   on any failure before exec:
 *   recv() <---------------------- SYNC_ERROR { launch_error } ; _exit(code)
 *   print error, reap, exit 125/126/127
 *                   `run`, on success:          execve() closes its end
 *   recv() == 0 (EOF) <-------------------------'
 *   write --pid-file, forward signals, waitpid, report OOM/pids events,
 *   remove cgroup and state, exit with its status
 *
 * EOF without a message also happens when the init dies before exec (e.g.
 * killed); the parent then reports the init's wait status as usual. When
 * the cgroup step fails, the parent kills the init and reports the error the
 * init sent before, if any (it is the cause), else its own.
 *
 * `run --wait-fd` clones the init before the go, into new PID, network, IPC
 * and UTS namespaces only (see run.c, "cloned ahead"); then:
 *
 *   clone(CLONE_NEW{PID,NET,IPC,UTS}) -------> prctl(PDEATHSIG, SIGKILL), lo up
 *   read the go byte from the wait fd           poll() the wait fd (not read) and
 *   (EOF: kill the init, reap it, exit 0)       the sync socket
 *   send SYNC_WAKE ---------------------------> (in case it missed the byte, read
 *                                               first: a caller that keeps the
 *                                               wait fd open after the byte)
 *                                               both wake at the byte:
 *   read and parse config.json; unless it       read and parse config.json,
 *   asks for exactly these namespaces (and      copy it into the shared memory
 *   mount, user, cgroup) and joins none:        and:
 *   kill the init, reap it, clone anew as
 *   above; state dir, seccomp BPF
 *   recv() <----------------------------------- send SYNC_CONFIG; recv() (blocks)
 *   unless the copy is the very bytes it read:
 *   kill the init, reap it, clone anew;
 *   root path and BPF into the shared memory
 *   send SYNC_GO -----------------------------> unshare(CLONE_NEWNS) (the host's
 *                                               mounts as they are now), then on
 *                                               as above from setns()
 */
#ifndef SKIFF_SYNC_H
#define SKIFF_SYNC_H

#include <stdint.h>

#include "util.h"

enum sync_type {
	SYNC_GO = 1,
	SYNC_ERROR = 2,
	SYNC_USERNS = 3,      /* init -> parent: new user namespace, write the maps */
	SYNC_USERNS_DONE = 4, /* parent -> init: maps written */
	SYNC_CREATED = 5,     /* init -> parent: set up, waiting for `start` */
	SYNC_CONFIG = 6,      /* init cloned ahead -> parent: read and parsed config.json, copied
			       * into the shared memory */
	SYNC_CGROUP = 7,      /* parent -> init: it is in its cgroup now */
	SYNC_WAKE = 8,        /* parent -> init cloned ahead: the go came (it may have missed the
			       * byte); sync_expect skips it */
	SYNC_HOOKS = 9,       /* init -> parent: namespaces and mounts made, run the create hooks */
	SYNC_HOOKS_DONE = 10, /* parent -> init, with the init's pid: hooks done */
};

struct sync_msg {
	uint32_t type;
	struct launch_error error; /* valid for SYNC_ERROR */
};

/* Send a message without payload. */
int sync_send(int fd, enum sync_type type, struct launch_error *err);
/* Wait for a message of this exact type, skipping SYNC_WAKE. -1 on EOF (the peer is gone) or
 * another message. */
int sync_expect(int fd, enum sync_type type);
/* Send a message with one value (SYNC_HOOKS_DONE: a pid). */
int sync_send_value(int fd, enum sync_type type, uint32_t value, struct launch_error *err);
/* Wait for a message of this type carrying a value. */
int sync_expect_value(int fd, enum sync_type type, uint32_t *value);
/* Init: report a setup failure; best effort, the init exits right after. */
void sync_send_error(int fd, const struct launch_error *error);
/* Parent: the next message. Returns its type, 0 on EOF (the init exec'd or
 * died), -1 when the socket failed; SYNC_ERROR fills *error. */
int sync_recv(int fd, struct launch_error *error);
/* Parent, once the init is killed: the error it sent before, if any, into *error. */
void sync_take_error(int fd, struct launch_error *error);

#endif
