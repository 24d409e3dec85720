/*
 * A readable manifest of a directory tree, for comparing Skiff's unpack with another tool's.
 * One line per path, sorted:
 *
 *   /etc/passwd  file     0644  0:0      6 sha256:1a2b3c4d5e6f  [link=/etc/passwd2]
 *   /bin/sh      symlink  0777  0:0      -> busybox
 *
 * Hard links are shown as a group: every member names the group's first path (in sorted
 * order), so a tree where two paths share an inode and one where they do not differ in text.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export interface ManifestOptions {
  /** Clear setuid/setgid bits (Skiff strips them by design; see services/image/README.md rule 6). */
  stripSetId?: boolean;
  /** Leave out device nodes, FIFOs and sockets (Skiff drops them by design, rule 6). */
  dropSpecial?: boolean;
  /** Paths ('/'-rooted) to leave out entirely, with everything below them. */
  ignore?: (path: string, st: Stats) => boolean;
  /** Include the mtime (seconds) of files and symlinks. */
  mtimes?: boolean;
}

export interface TreeEntry {
  path: string;
  type: 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  target?: string;
  ino: number;
  nlink: number;
  mtime: number;
}

function typeOf(st: Stats): TreeEntry['type'] {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** Every path below `root` ('/' is the root itself), never following symlinks. */
export function walkTree(root: string, opts: ManifestOptions = {}): TreeEntry[] {
  const out: TreeEntry[] = [];
  const visit = (rel: string): void => {
    const abs = rel === '/' ? root : join(root, rel);
    const st = lstatSync(abs);
    if (opts.ignore?.(rel, st)) return;
    const type = typeOf(st);
    if (opts.dropSpecial && (type === 'char' || type === 'block' || type === 'fifo' || type === 'socket')) return;
    let mode = st.mode & 0o7777;
    if (opts.stripSetId) mode &= ~0o6000;
    const e: TreeEntry = { path: rel, type, mode, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0, ino: st.ino, nlink: st.nlink, mtime: Math.floor(st.mtimeMs / 1000) };
    if (type === 'file') e.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
    if (type === 'symlink') e.target = readlinkSync(abs);
    out.push(e);
    if (type === 'dir') for (const name of readdirSync(abs).sort()) visit(rel === '/' ? `/${name}` : `${rel}/${name}`);
  };
  visit('/');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The sorted, one-line-per-path manifest described above. */
export function treeManifest(root: string, opts: ManifestOptions = {}): string[] {
  const entries = walkTree(root, opts);
  // Hard-link groups: inodes seen more than once among regular files in this tree.
  const byIno = new Map<number, string[]>();
  for (const e of entries) if (e.type === 'file') byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), e.path]);
  return entries.map((e) => {
    const owner = `${e.uid}:${e.gid}`;
    let line = `${e.path}  ${e.type.padEnd(7)}  ${e.mode.toString(8).padStart(4, '0')}  ${owner.padEnd(11)}`;
    if (e.type === 'file') line += `  ${e.size} sha256:${(e.sha256 as string).slice(0, 16)}`;
    if (e.type === 'symlink') line += `  -> ${e.target as string}`;
    if (opts.mtimes && e.type !== 'dir') line += `  mtime=${e.mtime}`;
    const group = e.type === 'file' ? (byIno.get(e.ino) as string[]) : [];
    if (group.length > 1) line += `  [link=${group[0] as string}]`;
    return line;
  });
}
