/** Node's process.arch spelled the way OCI platforms spell it. */
const ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

export function hostArchitecture(arch: string = process.arch): string {
  return ARCH[arch] ?? arch;
}
