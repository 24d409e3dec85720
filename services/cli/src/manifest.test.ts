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

describe('function.yaml destinations', () => {
  it('passes destinations on to the deploy body', () => {
    const m = loadManifest(fnDir('name: notify\nentrypoint: [/bin/cat]\ndestinations:\n  subject: orders.done\n  url: https://example.com/hook\n'));
    expect(deploySettings(m, 'notify:latest')).toMatchObject({ destinations: { subject: 'orders.done', url: 'https://example.com/hook' } });
    expect(deploySettings(loadManifest(fnDir('name: plain\nentrypoint: [/bin/cat]\n')), 'plain:latest')).not.toHaveProperty('destinations');
  });

  it('refuses a wildcard subject, a URL that is not http(s) and an empty setting, naming the field', () => {
    expect(() => loadManifest(fnDir('name: bad\nentrypoint: [/bin/cat]\ndestinations:\n  subject: "orders.*"\n'))).toThrow(/destinations\.subject: .*wildcards/);
    expect(() => loadManifest(fnDir('name: bad\nentrypoint: [/bin/cat]\ndestinations:\n  url: ftp://example.com/\n'))).toThrow(/destinations\.url: .*http/);
    expect(() => loadManifest(fnDir('name: bad\nentrypoint: [/bin/cat]\ndestinations: {}\n'))).toThrow(/destinations: must have a subject, a url, or both/);
  });
});
