import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploySettings, loadManifest } from './manifest.js';

function fnDir(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-manifest-'));
  writeFileSync(join(dir, 'function.yaml'), yaml);
  return dir;
}

describe('function.yaml triggers', () => {
  it('passes trigger subjects on to the deploy body', () => {
    const m = loadManifest(fnDir('name: on-order\nentrypoint: [/bin/cat]\ntriggers:\n  subjects: [orders.new, "logs.>"]\n'));
    expect(deploySettings(m, 'on-order:latest')).toMatchObject({ image: 'on-order:latest', triggers: { subjects: ['orders.new', 'logs.>'] } });
    expect(deploySettings(loadManifest(fnDir('name: plain\nentrypoint: [/bin/cat]\n')), 'plain:latest')).not.toHaveProperty('triggers');
  });

  it('refuses a subject of the platform, naming the field', () => {
    expect(() => loadManifest(fnDir('name: bad\nentrypoint: [/bin/cat]\ntriggers:\n  subjects: [ok.one, skiff.invoke]\n'))).toThrow(/triggers\.subjects\.1: "skiff\.invoke" is reserved/);
    expect(() => loadManifest(fnDir('name: bad\nentrypoint: [/bin/cat]\ntriggers:\n  subjects: ["*.x"]\n'))).toThrow(/triggers\.subjects\.0/);
  });
});
