import { spawn } from 'node:child_process';
import { SkiffError } from '@skiff/contracts/errors';

/*
 * overlayfs reads deletions from its layers as a character device 0/0 (whiteout) and a
 * directory's "hide everything below" as the xattr trusted.overlay.opaque=y. Node has
 * neither mknod nor setxattr, so one short perl process per layer makes them all through
 * the raw syscalls (perl-base is Essential on Debian; no extra package needed). Paths come
 * from the unpacker's private temp tree, whose parents it has already checked.
 */

/** Syscall numbers: [mknodat, lsetxattr]. Other architectures fall back to flat trees. */
const SYSCALLS: Record<string, [number, number]> = {
  x64: [259, 189],
  arm64: [33, 6],
};

const SCRIPT = String.raw`
use strict;
my ($mknodat, $lsetxattr) = @ARGV;
local $/ = "\0";
while (defined(my $op = <STDIN>)) {
  chomp $op;
  my $path = <STDIN>; chomp $path;
  my $r;
  if ($op eq 'w') { $r = syscall($mknodat, -100, $path, 0020000 | 0, 0); }
  else { my $n = "trusted.overlay.opaque"; my $v = "y"; $r = syscall($lsetxattr, $path, $n, $v, 1, 0); }
  if ($r != 0) { print STDERR "$op $path: $!\n"; exit 1; }
}
`;

export function overlayMarksSupported(): boolean {
  return SYSCALLS[process.arch] !== undefined && process.getuid?.() === 0;
}

/** Creates whiteout devices at `whiteouts` (which must not exist) and marks `opaques` (directories). */
export async function writeOverlayMarks(whiteouts: string[], opaques: string[]): Promise<void> {
  if (whiteouts.length === 0 && opaques.length === 0) return;
  const nums = SYSCALLS[process.arch];
  if (!nums) throw new SkiffError('SKIFF_INTERNAL', `overlay whiteouts are not supported on ${process.arch}`);
  const input = Buffer.concat([
    ...whiteouts.map((p) => Buffer.from(`w\0${p}\0`)),
    ...opaques.map((p) => Buffer.from(`o\0${p}\0`)),
  ]);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('perl', ['-e', SCRIPT, String(nums[0]), String(nums[1])], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new SkiffError('SKIFF_INTERNAL', `cannot run perl to write overlay whiteouts: ${err.message}`, { cause: err })));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new SkiffError('SKIFF_INTERNAL', `writing overlay whiteouts failed: ${stderr.trim() || `exit ${code}`}`));
    });
    child.stdin.end(input);
  });
}
