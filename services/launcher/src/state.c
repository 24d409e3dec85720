#define _GNU_SOURCE
#include "state.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int state_dir(char *buf, size_t len, const char *root, const char *id)
{
	return path_join(buf, len, root, id);
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

int state_write(const char *dir, const struct state *st, struct launch_error *err)
{
	struct json_object *o = json_object_new_object(), *cg = NULL;
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
	const char *text;
	_cleanup_fd_ int fd = -1;
	int rc = -1;

	add_str(o, "id", st->id);
	json_object_object_add(o, "pid", json_object_new_int(st->pid));
	json_object_object_add(o, "startTime", json_object_new_uint64(st->start_time));
	add_str(o, "bundle", st->bundle);
	add_str(o, "created", st->created);
	if (st->has_cgroup) {
		cg = json_object_new_object();
		json_object_object_add(cg, "version", json_object_new_int(st->cgroup.version));
		add_str(cg, "mount", st->cgroup.mnt);
		add_str(cg, "path", st->cgroup.path);
		json_object_object_add(cg, "controllers", json_object_new_int((int)st->cgroup.controllers));
		json_object_object_add(cg, "memoryLimit", json_object_new_int64(
			st->cgroup.res.has_memory ? st->cgroup.res.memory_limit : -1));
		json_object_object_add(cg, "pidsLimit", json_object_new_int64(
			st->cgroup.res.has_pids ? st->cgroup.res.pids_limit : -1));
		json_object_object_add(o, "cgroup", cg);
	}
	if (st->root_mount.id) {
		struct json_object *rm = json_object_new_object();
		add_str(rm, "path", st->root_mount.path);
		json_object_object_add(rm, "id", json_object_new_uint64(st->root_mount.id));
		json_object_object_add(o, "rootMount", rm);
	}
	if (st->no_process)
		json_object_object_add(o, "noProcess", json_object_new_boolean(true));
	if (st->annotations)
		json_object_object_add(o, "annotations", json_tokener_parse(st->annotations));
	if (st->hooks)
		json_object_object_add(o, "hooks", json_tokener_parse(st->hooks));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	snprintf(path, sizeof(path), "%s/" STATE_FILE, dir);
	snprintf(tmp, sizeof(tmp), "%s/" STATE_FILE ".tmp", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || rename(tmp, path) < 0)
		err_sys(err, "write state", path);
	else
		rc = 0;
	json_object_put(o);
	return rc;
}

static const char *get_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : NULL;
}

static int64_t get_int(struct json_object *o, const char *k, int64_t def)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int)
		       ? json_object_get_int64(v) : def;
}

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

int state_read(const char *dir, struct state *st, struct launch_error *err)
{
	char path[PATH_MAX + 32];
	struct json_object *o, *cg, *v;

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "%s/" STATE_FILE, dir);
	if (access(path, F_OK) < 0)
		return err_sys(err, "read state", path);
	o = json_object_from_file(path);
	if (!o || !json_object_is_type(o, json_type_object)) {
		if (o)
			json_object_put(o);
		return err_msg(err, "read state", path, "not a state file");
	}
	copy(st->id, sizeof(st->id), get_str(o, "id"));
	st->pid = (pid_t)get_int(o, "pid", 0);
	st->start_time = (uint64_t)get_int(o, "startTime", 0);
	copy(st->bundle, sizeof(st->bundle), get_str(o, "bundle"));
	copy(st->created, sizeof(st->created), get_str(o, "created"));
	if (json_object_object_get_ex(o, "cgroup", &cg) && json_object_is_type(cg, json_type_object)) {
		st->has_cgroup = true;
		st->cgroup.version = (int)get_int(cg, "version", 1);
		copy(st->cgroup.mnt, sizeof(st->cgroup.mnt), get_str(cg, "mount"));
		copy(st->cgroup.path, sizeof(st->cgroup.path), get_str(cg, "path"));
		st->cgroup.controllers = (unsigned)get_int(cg, "controllers", 0);
		st->cgroup.res.memory_limit = get_int(cg, "memoryLimit", -1);
		st->cgroup.res.has_memory = st->cgroup.res.memory_limit >= 0;
		st->cgroup.res.pids_limit = get_int(cg, "pidsLimit", -1);
		st->cgroup.res.has_pids = st->cgroup.res.pids_limit >= 0;
	}
	if (json_object_object_get_ex(o, "rootMount", &v) && json_object_is_type(v, json_type_object)) {
		copy(st->root_mount.path, sizeof(st->root_mount.path), get_str(v, "path"));
		st->root_mount.id = (uint64_t)get_int(v, "id", 0);
	}
	st->no_process = json_object_object_get_ex(o, "noProcess", &v) && json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "annotations", &v) && json_object_is_type(v, json_type_object))
		st->annotations = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	if (json_object_object_get_ex(o, "hooks", &v) && json_object_is_type(v, json_type_object))
		st->hooks = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (st->pid <= 0 || !st->id[0]) {
		state_free(st);
		return err_msg(err, "read state", path, "missing id or pid");
	}
	return 0;
}

void state_free(struct state *st)
{
	free(st->annotations);
	free(st->hooks);
	st->annotations = st->hooks = NULL;
}

uint64_t proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	_cleanup_fd_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may contain anything */
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0; /* zombies count as stopped */
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

const char *state_status(const char *dir, const struct state *st)
{
	char fifo[PATH_MAX + 32];
	uint64_t t = proc_start_time(st->pid);

	if (!t || t != st->start_time)
		return "stopped";
	snprintf(fifo, sizeof(fifo), "%s/" EXEC_FIFO, dir);
	return access(fifo, F_OK) == 0 ? "created" : "running";
}

int state_remove(const char *dir)
{
	char path[PATH_MAX + 32];
	static const char *const files[] = { STATE_FILE, STATE_FILE ".tmp", EXEC_FIFO };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	return rmdir(dir) < 0 && errno != ENOENT ? -1 : 0;
}

static const struct { const char *name; int sig; } signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "IOT", SIGIOT }, { "BUS", SIGBUS },
	{ "FPE", SIGFPE }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
	{ "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU }, { "URG", SIGURG },
	{ "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
	{ "WINCH", SIGWINCH }, { "IO", SIGIO }, { "POLL", SIGPOLL }, { "PWR", SIGPWR },
	{ "SYS", SIGSYS },
};

int signal_parse(const char *s)
{
	char *end;
	long n;

	if (!s || !*s)
		return -1;
	if (isdigit((unsigned char)s[0])) {
		n = strtol(s, &end, 10);
		return *end || n < 1 || n > SIGRTMAX ? -1 : (int)n;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcasecmp(s, signals[i].name) == 0)
			return signals[i].sig;
	if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
		bool max = toupper((unsigned char)s[3]) == 'A';
		n = 0;
		if (s[5]) {
			n = strtol(s + 5, &end, 10);
			if (*end || (max ? n > 0 : n < 0))
				return -1;
		}
		n += max ? SIGRTMAX : SIGRTMIN;
		return n < SIGRTMIN || n > SIGRTMAX ? -1 : (int)n;
	}
	return -1;
}
