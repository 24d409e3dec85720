// docs/security.md #11, #12 and #13 for the launcher: leaked fds and cwd outside the root, writing the
// launcher's executable from inside, and images whose /proc, /sys, /dev, /dev/null or
// /dev/ptmx are symlinks or fakes. Every container runs with the worker's full profile.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fixture, launcher, type Config } from '../launcher/fixture.js';

const fx = new Fixture();
beforeAll(() => fx.setup());
afterAll(() => fx.teardown());

/** A rootfs of its own (busybox hard-linked), changed by `mutate` before the run. */
function image(name: string, mutate: (root: string) => void): string {
  const root = path.join(fx.base, `img-${name}`);
  for (const dir of ['bin', 'etc', 'tmp']) fs.mkdirSync(path.join(root, dir), { recursive: true });
  fs.linkSync(path.join(fx.rootfs, 'bin/busybox'), path.join(root, 'bin/busybox'));
  for (const applet of ['sh', 'cat', 'ls', 'stat', 'echo', 'test', 'readlink', 'pwd', 'grep', 'true']) {
    fs.symlinkSync('busybox', path.join(root, 'bin', applet));
  }
  mutate(root);
  return root;
}

function inImage(root: string, script: string, edit?: (c: Config) => void) {
  const cfg = fx.config(['sh', '-c', script], { rootfs: root });
  edit?.(cfg);
  return fx.run(cfg);
}

describe('11: cwd and file descriptors (runc CVE-2024-21626)', () => {
  it('refuses a cwd reached through a leaked host fd', () => {
    const fd = fs.openSync('/', 'r');
    try {
      for (const n of [3, 4, 5, 6, 7, 8]) {
        const cfg = fx.config(['sh', '-c', 'pwd; ls ../../..']);
        cfg.process.cwd = `/proc/self/fd/${n}`;
        const r = fx.run(cfg, { stdio: ['pipe', 'pipe', 'pipe', fd, fd, fd, fd, fd, fd] });
        expect(r.status, `cwd /proc/self/fd/${n}: ${r.stdout}`).not.toBe(0);
        expect(r.stdout).not.toMatch(/\b(boot|etc|usr)\b/);
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  it('keeps a cwd that is a symlink pointing outside inside the root', () => {
    const root = image('cwdlink', (r) => fs.symlinkSync('../../../../../../../etc', path.join(r, 'escape')));
    const marker = `skiff-cwd-${process.pid}`;
    fs.writeFileSync(path.join('/etc', marker), 'host');
    try {
      const res = inImage(root, `pwd; test -e ${marker} && echo HOST-ETC || echo contained`, (c) => (c.process.cwd = '/escape'));
      expect(res.stderr).toBe('');
      expect(res.stdout).toBe('/etc\ncontained\n');
    } finally {
      fs.rmSync(path.join('/etc', marker));
    }
  });

  it('passes only fds 0-2 into a container started ahead, not the launcher\'s fd 3 nor its sync socket', async () => {
    const res = await fx.runAhead(fx.config(['sh', '-c', 'ls /proc/1/fd; true']));
    expect(res.stderr).toBe('');
    expect(res.stdout.split('\n').filter(Boolean)).toEqual(['0', '1', '2']);
  });

  it('passes only fds 0-2 into the container (--preserve-fds: see test/launcher/run.test.ts)', () => {
    const fd = fs.openSync(path.join(fx.base, 'leak'), 'w');
    try {
      const res = fx.run(fx.config(['sh', '-c', 'ls /proc/1/fd; true']), { stdio: ['pipe', 'pipe', 'pipe', fd, fd, fd] });
      expect(res.stderr).toBe('');
      expect(res.stdout.split('\n').filter(Boolean)).toEqual(['0', '1', '2']);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('12: the launcher executable cannot be opened for writing (runc CVE-2019-5736)', () => {
  const hash = () => createHash('sha256').update(fs.readFileSync(launcher)).digest('hex');

  it('no process visible inside exposes the launcher, and every exe refuses writes', () => {
    const before = hash();
    const script = [
      'for e in /proc/self/exe /proc/[0-9]*/exe; do',
      '  echo "$e -> $(readlink $e)";',
      '  if { echo "#!/bin/sh" > $e; } 2>/dev/null; then echo "WROTE $e"; else echo "refused $e"; fi;',
      '  if { echo "#!/bin/sh" >> $e; } 2>/dev/null; then echo "WROTE $e"; else echo "refused $e"; fi;',
      'done',
    ].join(' ');
    const res = fx.sh(script);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const exes = [...res.stdout.matchAll(/^(\S+) -> (.*)$/gm)];
    // the container's own processes only: each exe readable from inside, and the container's program
    expect(exes.map((m) => m[1])).toEqual(['/proc/self/exe', '/proc/1/exe']);
    for (const [line, , target] of exes) expect(target, line).toBe('/bin/busybox');
    // and both writes were tried on each, and refused
    for (const [, exe] of exes) expect(res.stdout.split('\n').filter((l) => l === `refused ${exe}`), exe).toHaveLength(2);
    expect(res.stdout).not.toContain('WROTE');
    expect(hash()).toBe(before);
  });

  it('stays unopenable even when the container can see the host pid namespace', () => {
    // Without a pid namespace the launcher's own /proc/<pid>/exe is in view. Opening it at all
    // is what CVE-2019-5736 needs (the fd is written once the launcher has exited): the user
    // namespace (another uid) and the empty capability sets must refuse even a read.
    const before = hash();
    const script = [
      'for p in /proc/[0-9]*; do',
      '  if { true < $p/exe; } 2>/dev/null; then echo "opened $p $(readlink $p/exe)"; fi;',
      '  if { echo x >> $p/exe; } 2>/dev/null; then echo "WROTE $p"; fi;',
      '  echo "tried $p";',
      'done; true',
    ].join(' ');
    const res = fx.sh(script, (c) => {
      c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'pid');
    });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.stdout, 'the launcher is in view and was tried').toContain(`tried /proc/${res.pid}\n`);
    expect(res.stdout).not.toContain('WROTE');
    // the only executables it can open are its own processes' (the container's program)
    const opened = [...res.stdout.matchAll(/^opened (\S+) (.*)$/gm)];
    for (const [line, , target] of opened) expect(target, line).toBe('/bin/busybox');
    expect(res.stdout).not.toContain(`opened /proc/${res.pid} `);
    expect(hash()).toBe(before);
  });
});

describe('13: images with symlinked or fake /proc, /sys, /dev, /dev/null, /dev/ptmx (CVE-2019-16884 class)', () => {
  it.each([
    ['/proc -> /', (r: string) => fs.symlinkSync('/', path.join(r, 'proc')), '/proc'],
    ['/proc -> tmp', (r: string) => fs.symlinkSync('tmp', path.join(r, 'proc')), '/proc'],
    ['/sys -> /tmp', (r: string) => fs.symlinkSync('/tmp', path.join(r, 'sys')), '/sys'],
    ['/dev -> /', (r: string) => fs.symlinkSync('/', path.join(r, 'dev')), '/dev'],
  ])('refuses an image with %s', (_name, mutate, dest) => {
    const root = image(`link${dest.slice(1)}${Math.random().toString(36).slice(2, 6)}`, (r) => {
      for (const d of ['proc', 'sys', 'dev']) if (d !== dest.slice(1)) fs.mkdirSync(path.join(r, d));
      mutate(r);
    });
    const res = inImage(root, 'echo ran');
    expect(res.status).toBe(125);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe(`skiff-launch: mount on ${dest}: the image has a symlink on this path; refused\n`);
  });

  it('makes a fake /dev/null and a /dev/ptmx symlink harmless', () => {
    const root = image('fakedev', (r) => {
      for (const d of ['proc', 'sys', 'dev']) fs.mkdirSync(path.join(r, d));
      fs.writeFileSync(path.join(r, 'dev/null'), 'not a device');
      fs.symlinkSync('/proc/sys/kernel/core_pattern', path.join(r, 'dev/ptmx'));
      fs.mkdirSync(path.join(r, 'dev/shm'));
    });
    const res = inImage(root, 'stat -c "%F %t,%T" /dev/null; readlink /dev/ptmx; echo x > /dev/null && echo wrote-null; cat /dev/null | wc -c');
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('character special file 1,3\npts/ptmx\nwrote-null\n0\n');
    // the image's own files were never touched
    expect(fs.readFileSync(path.join(root, 'dev/null'), 'utf8')).toBe('not a device');
  });

  it('refuses a masked path the image turned into a symlink', () => {
    const root = image('maskedlink', (r) => {
      for (const d of ['proc', 'sys', 'dev']) fs.mkdirSync(path.join(r, d));
    });
    const res = inImage(root, 'echo ran', (c) => {
      // the image cannot plant symlinks in /proc itself, but a masked path elsewhere can be one
      c.linux.maskedPaths = ['/etc/secret'];
      fs.symlinkSync('/proc/self/environ', path.join(root, 'etc/secret'));
    });
    expect(res.status).toBe(125);
    expect(res.stderr).toContain('/etc/secret: the image has a symlink on this path; refused');
  });

  it('never mounts proc or sysfs through an image symlink even in a non-standard place', () => {
    const root = image('proclink', (r) => {
      for (const d of ['proc', 'sys', 'dev']) fs.mkdirSync(path.join(r, d));
      fs.symlinkSync('/etc', path.join(r, 'altproc'));
    });
    // Followed, the symlink would put proc on the image's /etc: the container would see it there.
    const res = inImage(root, 'test -e /etc/self/status && echo "proc on /etc"; echo ran', (c) => c.mounts.push({ destination: '/altproc', type: 'proc', source: 'proc' }));
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe('skiff-launch: mount on /altproc: the image has a symlink on this path; refused\n');
    expect(res.status).toBe(125);
  });
});
