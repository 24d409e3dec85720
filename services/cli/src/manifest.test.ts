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

  it('passes a schedule on to the deploy body, as a string or with its options', () => {
    const short = loadManifest(fnDir('name: nightly\nentrypoint: [/bin/cat]\ntriggers:\n  schedule: "0 3 * * *"\n'));
    expect(deploySettings(short, 'nightly:latest')).toMatchObject({ triggers: { schedule: '0 3 * * *' } });
    const long = loadManifest(fnDir('name: nightly\nentrypoint: [/bin/cat]\ntriggers:\n  schedule: { cron: "*/10 * * * * *", timeZone: Europe/Berlin, catchUp: true }\n'));
    expect(deploySettings(long, 'nightly:latest')).toMatchObject({ triggers: { schedule: { cron: '*/10 * * * * *', timeZone: 'Europe/Berlin', catchUp: true } } });
  });

  it('refuses a schedule the gateway would refuse, naming the field', () => {
    expect(() => loadManifest(fnDir('name: bad\nentrypoint: [/bin/cat]\ntriggers:\n  schedule: "* * *"\n'))).toThrow(/triggers\.schedule: must be a cron expression of 5 fields/);
    expect(() => loadManifest(fnDir('name: bad\nentrypoint: [/bin/cat]\ntriggers:\n  schedule: { cron: "* * * * *", timeZone: Nowhere/Land }\n'))).toThrow(/triggers\.schedule\.timeZone: "Nowhere\/Land" is not an IANA time zone/);
    expect(() => loadManifest(fnDir('name: bad\nentrypoint: [/bin/cat]\ntriggers:\n  schedule: { cron: "* * * * *", catchup: true }\n'))).toThrow(/triggers\.schedule/);
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
