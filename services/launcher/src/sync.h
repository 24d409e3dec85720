/* Parent <-> container init handshake over a SOCK_SEQPACKET|SOCK_CLOEXEC
 * socketpair. One message per packet; the init's end closes itself on exec.
 *
 *   launcher (parent)                         container init (child)
 *   -----------------                         ----------------------
 *   socketpair(CLOEXEC)
 *   clone(CLONE_NEW*) ------------------------> prctl(PDEATHSIG, SIGKILL)
 *   [later rounds: uid/gid maps, cgroups]       recv()  (blocks)
 *   send SYNC_GO -----------------------------> got GO: parent was alive after
 *                                               PDEATHSIG was armed
 *                                               lo up, hostname, mounts,
 *                                               pivot_root, rlimits, user,
 *                                               cwd check, fds, signals
 *                   on any failure:
 *   recv() <---------------------- SYNC_ERROR { launch_error } ; _exit(code)
 *   print error, reap, exit 125/126/127
 *                   on success:
 *                                               execve() closes its end
 *   recv() == 0 (EOF) <-------------------------'
 *   write --pid-file, forward signals, waitpid, exit with its status
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
};

struct sync_msg {
	uint32_t type;
	struct launch_error error; /* valid for SYNC_ERROR */
};

/* Parent: let the init proceed. */
int sync_send_go(int fd, struct launch_error *err);
/* Init: wait for GO. -1 on EOF (the parent is gone) or a bad message. */
int sync_wait_go(int fd);
/* Init: report a setup failure; best effort, the init exits right after. */
void sync_send_error(int fd, const struct launch_error *error);
/* Parent: 0 when the init exec'd (EOF), 1 with *error filled when it
 * reported a failure, -1 when the socket itself failed. */
int sync_wait_exec(int fd, struct launch_error *error);

#endif
