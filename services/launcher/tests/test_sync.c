/* The parent <-> init messages over their SOCK_SEQPACKET socketpair. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "sync.h"

/*
 * An init that fails sends its error and exits, maybe before it read what the parent sent it
 * meanwhile (SYNC_CGROUP, while it sets up its mounts). Closing a socket with messages unread
 * resets the connection, and the parent's next recv reports ECONNRESET before the error that
 * is still queued for it: the parent must still get that error.
 */
static void error_survives_unread_messages(const void *arg)
{
	struct launch_error sent = { 0 }, got = { 0 };
	int fds[2];

	(void)arg;
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
	CHECK(sync_send(fds[0], SYNC_CGROUP, &got) == 0); /* parent -> init, never read */
	sent.exit_code = EXIT_LAUNCH_FAILED;
	strcpy(sent.op, "mount on");
	strcpy(sent.path, "/proc");
	sync_send_error(fds[1], &sent);
	close(fds[1]); /* the init exits */
	CHECK(sync_recv(fds[0], &got) == SYNC_ERROR);
	CHECK_STR(got.op, "mount on");
	CHECK_STR(got.path, "/proc");
	CHECK(got.exit_code == EXIT_LAUNCH_FAILED);
	CHECK(sync_recv(fds[0], &got) == 0); /* then end of file */
	close(fds[0]);
}

/* With nothing queued, the reset reads as end of file: the init died without a word. */
static void reset_without_message_is_eof(const void *arg)
{
	struct launch_error err = { 0 };
	int fds[2];

	(void)arg;
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
	CHECK(sync_send(fds[0], SYNC_GO, &err) == 0);
	close(fds[1]);
	CHECK(sync_recv(fds[0], &err) == 0);
	close(fds[0]);
}

void test_sync(void)
{
	check_run("sync: an error survives messages the init left unread", error_survives_unread_messages, NULL);
	check_run("sync: a reset with nothing queued is end of file", reset_without_message_is_eof, NULL);
}
