/* Parent <-> container init handshake over a SOCK_SEQPACKET|SOCK_CLOEXEC
 * socketpair. One message per packet; the init's end closes itself on exec.
 *
 *   launcher (parent)                         container init (child)
 *   -----------------                         ----------------------
 *   state dir, seccomp BPF (cache), cgroup
 *   socketpair(CLOEXEC)
 *   clone(CLONE_NEW{NS,PID,NET,IPC,UTS}) -----> prctl(PDEATHSIG, SIGKILL)
 *   write pid to cgroup.procs                   recv()  (blocks)
 *   send SYNC_GO -----------------------------> got GO: parent was alive after
 *                                               PDEATHSIG was armed; setns()
 *                                               joins, unshare(CLONE_NEWCGROUP)
 *                                               (now inside the cgroup),
 *                                               oom_score_adj, lo up, hostname,
 *                                               sysctls, mounts, /dev, masked
 *                                               and read-only paths, pivot_root,
 *                                               rlimits   -- all as host root
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
 * killed); the parent then reports the init's wait status as usual.
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
};

struct sync_msg {
	uint32_t type;
	struct launch_error error; /* valid for SYNC_ERROR */
};

/* Send a message without payload. */
int sync_send(int fd, enum sync_type type, struct launch_error *err);
/* Wait for a message of this exact type. -1 on EOF (the peer is gone) or another message. */
int sync_expect(int fd, enum sync_type type);
/* Init: report a setup failure; best effort, the init exits right after. */
void sync_send_error(int fd, const struct launch_error *error);
/* Parent: the next message. Returns its type, 0 on EOF (the init exec'd or
 * died), -1 when the socket failed; SYNC_ERROR fills *error. */
int sync_recv(int fd, struct launch_error *error);

#endif
