#include "sync.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

/*
 * A peer that exits with messages of ours unread (an init failing while SYNC_CGROUP is on its
 * way) resets the connection: the next recv reports ECONNRESET, once, even though what the
 * peer sent before it exited, its error report above all, is still queued. The recv after it
 * returns that, or end of file.
 */
static ssize_t recv_msg(int fd, struct sync_msg *msg)
{
	bool reset = false;
	ssize_t n;

	for (;;) {
		n = recv(fd, msg, sizeof(*msg), 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != ECONNRESET || reset)
			return n;
		reset = true;
	}
}

int sync_send(int fd, enum sync_type type, struct launch_error *err)
{
	uint32_t t = type;

	if (send(fd, &t, sizeof(t), MSG_NOSIGNAL) != sizeof(t))
		return err_sys(err, "sync with container init", NULL);
	return 0;
}

int sync_expect(int fd, enum sync_type type)
{
	struct sync_msg msg;
	ssize_t n;

	while ((n = recv_msg(fd, &msg)) >= (ssize_t)sizeof(msg.type) && msg.type == SYNC_WAKE)
		;
	return n >= (ssize_t)sizeof(msg.type) && msg.type == type ? 0 : -1;
}

int sync_send_value(int fd, enum sync_type type, uint32_t value, struct launch_error *err)
{
	uint32_t m[2] = { type, value };

	if (send(fd, m, sizeof(m), MSG_NOSIGNAL) != sizeof(m))
		return err_sys(err, "sync with container init", NULL);
	return 0;
}

int sync_expect_value(int fd, enum sync_type type, uint32_t *value)
{
	struct sync_msg msg;
	ssize_t n;

	while ((n = recv_msg(fd, &msg)) >= (ssize_t)sizeof(msg.type) && msg.type == SYNC_WAKE)
		;
	if (n != 2 * sizeof(uint32_t) || msg.type != type)
		return -1;
	memcpy(value, (const char *)&msg + sizeof(uint32_t), sizeof(*value));
	return 0;
}

void sync_send_error(int fd, const struct launch_error *error)
{
	struct sync_msg msg = { .type = SYNC_ERROR, .error = *error };

	(void)send(fd, &msg, sizeof(msg), MSG_NOSIGNAL);
}

void sync_take_error(int fd, struct launch_error *error)
{
	struct launch_error sent;
	int got;

	while ((got = sync_recv(fd, &sent)) > 0)
		if (got == SYNC_ERROR) {
			*error = sent;
			return;
		}
}

int sync_recv(int fd, struct launch_error *error)
{
	struct sync_msg msg;
	ssize_t n = recv_msg(fd, &msg);

	if (n == 0)
		return 0;
	if (n < 0)
		return err_sys(error, "read from container init", NULL);
	if (n == sizeof(msg.type) &&
	    (msg.type == SYNC_USERNS || msg.type == SYNC_CREATED || msg.type == SYNC_CONFIG ||
	     msg.type == SYNC_HOOKS))
		return (int)msg.type;
	if (n != (ssize_t)sizeof(msg) || msg.type != SYNC_ERROR)
		return err_msg(error, "read from container init", NULL, "malformed message");
	*error = msg.error;
	error->op[sizeof(error->op) - 1] = '\0'; /* never trust lengths blindly */
	error->path[sizeof(error->path) - 1] = '\0';
	error->detail[sizeof(error->detail) - 1] = '\0';
	return SYNC_ERROR;
}
