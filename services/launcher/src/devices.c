#define _GNU_SOURCE
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ANY -1

static bool full_wildcard(const struct device_rule *r)
{
	return r->type == 'a' && r->major == ANY && r->minor == ANY && strlen(r->access) == 3;
}

/* A rule for type "a" that is not "everything": the same rule for char and block devices, which
 * is what it means (the v1 kernel would read any "a" rule as all devices, all access). */
static size_t expand(const struct device_rule *r, struct device_rule out[2])
{
	if (r->type != 'a' || full_wildcard(r)) {
		out[0] = *r;
		return 1;
	}
	out[0] = *r;
	out[0].type = 'c';
	out[1] = *r;
	out[1].type = 'b';
	return 2;
}

static void rule_text(const struct device_rule *r, char *buf, size_t len)
{
	char major[16] = "*", minor[16] = "*";

	if (full_wildcard(r)) {
		snprintf(buf, len, "a");
		return;
	}
	if (r->major != ANY)
		snprintf(major, sizeof(major), "%lld", (long long)r->major);
	if (r->minor != ANY)
		snprintf(minor, sizeof(minor), "%lld", (long long)r->minor);
	snprintf(buf, len, "%c %s:%s %s", r->type, major, minor, r->access);
}

int devices_apply_v1(const char *dir, const struct device_rule *rules, size_t n, struct launch_error *err)
{
	char path[PATH_MAX], text[64];

	for (size_t i = 0; i < n; i++) {
		struct device_rule parts[2];
		size_t k = expand(&rules[i], parts);

		for (size_t j = 0; j < k; j++) {
			_cleanup_fd_ int fd = -1;

			snprintf(path, sizeof(path), "%s/%s", dir, parts[j].allow ? "devices.allow" : "devices.deny");
			rule_text(&parts[j], text, sizeof(text));
			fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write_all(fd, text, strlen(text)) < 0)
				return err_sys(err, "write device rule", path);
		}
	}
	return 0;
}

/* ---- the v1 semantics, emulated ---- */

static unsigned access_bits(const char *access)
{
	unsigned bits = 0;

	for (const char *p = access; *p; p++)
		bits |= *p == 'm' ? BPF_DEVCG_ACC_MKNOD : *p == 'r' ? BPF_DEVCG_ACC_READ : BPF_DEVCG_ACC_WRITE;
	return bits;
}

static void bits_text(unsigned bits, char out[4])
{
	size_t n = 0;

	if (bits & BPF_DEVCG_ACC_READ)
		out[n++] = 'r';
	if (bits & BPF_DEVCG_ACC_WRITE)
		out[n++] = 'w';
	if (bits & BPF_DEVCG_ACC_MKNOD)
		out[n++] = 'm';
	out[n] = '\0';
}

static bool same_device(const struct device_rule *a, const struct device_rule *b)
{
	return a->type == b->type && a->major == b->major && a->minor == b->minor;
}

/* The kernel's exception add: merge the access into an exception for the same device, or add one. */
static void exception_add(struct device_policy *p, const struct device_rule *r)
{
	for (size_t i = 0; i < p->n; i++)
		if (same_device(&p->exceptions[i], r)) {
			bits_text(access_bits(p->exceptions[i].access) | access_bits(r->access), p->exceptions[i].access);
			return;
		}
	if (p->n < sizeof(p->exceptions) / sizeof(p->exceptions[0]))
		p->exceptions[p->n++] = *r;
}

/* The kernel's exception removal: take the access away from exceptions for the same device. */
static void exception_remove(struct device_policy *p, const struct device_rule *r)
{
	for (size_t i = 0; i < p->n;) {
		struct device_rule *e = &p->exceptions[i];
		unsigned left;

		if (!same_device(e, r)) {
			i++;
			continue;
		}
		left = access_bits(e->access) & ~access_bits(r->access);
		if (left) {
			bits_text(left, e->access);
			i++;
			continue;
		}
		memmove(e, e + 1, (p->n - i - 1) * sizeof(*e));
		p->n--;
	}
}

void devices_emulate(const struct device_rule *rules, size_t n, struct device_policy *out)
{
	out->default_allow = true; /* a new v1 cgroup below the root allows everything */
	out->n = 0;
	for (size_t i = 0; i < n; i++) {
		struct device_rule parts[2];
		size_t k = expand(&rules[i], parts);

		for (size_t j = 0; j < k; j++) {
			const struct device_rule *r = &parts[j];

			if (full_wildcard(r)) {
				out->default_allow = r->allow;
				out->n = 0;
			} else if (r->allow == out->default_allow) {
				exception_remove(out, r);
			} else {
				exception_add(out, r);
			}
		}
	}
}

static bool matches(const struct device_rule *e, char type, unsigned major, unsigned minor)
{
	return (e->type == 'a' || e->type == type) && (e->major == ANY || e->major == major) &&
	       (e->minor == ANY || e->minor == minor);
}

bool devices_policy_allows(const struct device_policy *p, char type, unsigned major, unsigned minor, char access)
{
	unsigned want = access_bits((char[]){ access, '\0' });

	for (size_t i = 0; i < p->n; i++) {
		const struct device_rule *e = &p->exceptions[i];

		if (!matches(e, type, major, minor))
			continue;
		/* allowed by default: any overlap denies; denied by default: full cover allows */
		if (p->default_allow && (want & access_bits(e->access)))
			return false;
		if (!p->default_allow && !(want & ~access_bits(e->access)))
			return true;
	}
	return p->default_allow;
}

/* ---- the v2 program ---- */

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define MOV32_REG(dst, src) INSN(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define ALU32_IMM(op, dst, imm) INSN(BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define JMP32_IMM(op, dst, imm, off) INSN(BPF_JMP32 | (op) | BPF_K, dst, 0, off, imm)
#define MOV64_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* r3 = device type, r4 = access bits, r5 = major, r6 = minor (struct bpf_cgroup_dev_ctx). */
static size_t program_head(struct bpf_insn *p)
{
	size_t n = 0;

	p[n++] = LDX_W(BPF_REG_2, BPF_REG_1, 0);
	p[n++] = MOV32_REG(BPF_REG_3, BPF_REG_2);
	p[n++] = ALU32_IMM(BPF_AND, BPF_REG_3, 0xffff);
	p[n++] = MOV32_REG(BPF_REG_4, BPF_REG_2);
	p[n++] = ALU32_IMM(BPF_RSH, BPF_REG_4, 16);
	p[n++] = LDX_W(BPF_REG_5, BPF_REG_1, 4);
	p[n++] = LDX_W(BPF_REG_6, BPF_REG_1, 8);
	return n;
}

/* One exception: its device tests, then the access test and the verdict; every failed test
 * jumps past the block. Returns the instructions written. */
static size_t program_exception(struct bpf_insn *p, const struct device_rule *e, bool default_allow)
{
	struct bpf_insn block[8];
	size_t n = 0;
	unsigned bits = access_bits(e->access);

	if (e->type != 'a')
		block[n++] = JMP32_IMM(BPF_JNE, BPF_REG_3, e->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0);
	if (e->major != ANY)
		block[n++] = JMP32_IMM(BPF_JNE, BPF_REG_5, (int32_t)(uint32_t)e->major, 0);
	if (e->minor != ANY)
		block[n++] = JMP32_IMM(BPF_JNE, BPF_REG_6, (int32_t)(uint32_t)e->minor, 0);
	block[n++] = MOV32_REG(BPF_REG_7, BPF_REG_4);
	block[n++] = ALU32_IMM(BPF_AND, BPF_REG_7, default_allow ? (int32_t)bits : (int32_t)~bits);
	block[n++] = JMP32_IMM(default_allow ? BPF_JEQ : BPF_JNE, BPF_REG_7, 0, 0);
	block[n++] = MOV64_IMM(BPF_REG_0, default_allow ? 0 : 1);
	block[n++] = EXIT();
	for (size_t i = 0; i < n; i++) {
		if (BPF_CLASS(block[i].code) == BPF_JMP32)
			block[i].off = (int16_t)(n - i - 1); /* to the instruction after the block */
		p[i] = block[i];
	}
	return n;
}

static int load_program(const struct bpf_insn *insns, size_t n, struct launch_error *err)
{
	static char log[4096];
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)n;
	attr.license = (uint64_t)(uintptr_t)"Apache-2.0";
	fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd >= 0)
		return fd;
	/* again with the verifier's log, for the message */
	attr.log_buf = (uint64_t)(uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd >= 0)
		return fd;
	if (log[0])
		return err_msg(err, "load device cgroup program", NULL, "%s: %.160s", strerror(errno), log);
	return err_sys(err, "load device cgroup program", NULL);
}

int devices_apply_v2(const char *dir, const struct device_rule *rules, size_t n, struct launch_error *err)
{
	static struct device_policy policy;
	static struct bpf_insn insns[8 + (sizeof(policy.exceptions) / sizeof(policy.exceptions[0])) * 8 + 2];
	_cleanup_fd_ int cgfd = -1, prog = -1;
	union bpf_attr attr;
	size_t len;

	devices_emulate(rules, n, &policy);
	len = program_head(insns);
	for (size_t i = 0; i < policy.n; i++)
		len += program_exception(insns + len, &policy.exceptions[i], policy.default_allow);
	insns[len++] = MOV64_IMM(BPF_REG_0, policy.default_allow ? 1 : 0);
	insns[len++] = EXIT();
	prog = load_program(insns, len, err);
	if (prog < 0)
		return -1;
	cgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return err_sys(err, "open cgroup", dir);
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cgfd;
	attr.attach_bpf_fd = (uint32_t)prog;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI; /* ANDed with whatever the ancestors attached */
	if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof(attr)) < 0)
		return err_sys(err, "attach device cgroup program to", dir);
	return 0; /* the program lives as long as the cgroup keeps it attached */
}
