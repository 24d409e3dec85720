import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SETTINGS, SkiffError } from '@skiff/contracts';
import { Registry, type FunctionSettings } from './registry.js';

const settings = (over: Partial<FunctionSettings> = {}): FunctionSettings => ({
  image: 'echo:latest',
  imageDigest: `sha256:${'a'.repeat(64)}`,
  mode: 'exec',
  timeoutMs: 1000,
  ...DEFAULT_SETTINGS,
  ...over,
});

const dbFile = () => join(mkdtempSync(join(tmpdir(), 'skiff-reg-')), 'registry.db');

describe('Registry', () => {
  it('creates once, then refuses the same name', () => {
    const r = new Registry(dbFile());
    expect(r.create('echo', settings()).version).toBe(1);
    expect(() => r.create('echo', settings())).toThrow(SkiffError);
  });

  it('bumps the version only when a setting changes, and keeps every version', () => {
    const r = new Registry(dbFile());
    expect(r.deploy('f', settings())).toMatchObject({ created: true, record: { version: 1 } });
    expect(r.deploy('f', settings()).record.version).toBe(1);
    expect(r.deploy('f', settings({ memoryMb: 256 })).record).toMatchObject({ version: 2, memoryMb: 256 });
    expect(r.deploy('f', settings({ cpus: 0.5, memoryMb: 256 })).record.version).toBe(3);
    const versions = r.db.prepare('SELECT version, memory_mb, cpus FROM function_versions WHERE name = ? ORDER BY version').all('f');
    expect(versions).toEqual([
      { version: 1, memory_mb: 128, cpus: 1 },
      { version: 2, memory_mb: 256, cpus: 1 },
      { version: 3, memory_mb: 256, cpus: 0.5 },
    ]);
  });

  it('keeps the function schemas as JSON and counts a schema change as a new version', () => {
    const r = new Registry(dbFile());
    const schema = { type: 'object', properties: { name: { type: 'string' } } };
    r.deploy('f', settings({ inputSchema: schema }));
    expect(r.get('f')?.inputSchema).toEqual(schema);
    expect(r.deploy('f', settings({ inputSchema: schema })).record.version).toBe(1);
    expect(r.deploy('f', settings({ inputSchema: { ...schema, required: ['name'] } })).record.version).toBe(2);
    expect(r.deployedDigests()).toEqual(new Set([`sha256:${'a'.repeat(64)}`]));
  });

  it('removes a function with its history', () => {
    const r = new Registry(dbFile());
    r.deploy('f', settings());
    expect(r.remove('f')).toBe(true);
    expect(r.get('f')).toBeUndefined();
    expect(r.remove('f')).toBe(false);
  });

  it('migrates a registry made before resource limits existed, keeping its functions', () => {
    const file = dbFile();
    const old = new Database(file);
    old.exec(`CREATE TABLE functions (name TEXT PRIMARY KEY, version INTEGER NOT NULL, image TEXT NOT NULL, image_digest TEXT NOT NULL,
                mode TEXT NOT NULL, timeout_ms INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
              CREATE TABLE function_versions (name TEXT NOT NULL, version INTEGER NOT NULL, image TEXT NOT NULL, image_digest TEXT NOT NULL,
                mode TEXT NOT NULL, timeout_ms INTEGER NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (name, version));
              CREATE TABLE api_keys (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_at TEXT NOT NULL);
              INSERT INTO functions VALUES ('old', 4, 'echo:latest', 'sha256:${'b'.repeat(64)}', 'exec', 500, 't', 't');
              PRAGMA user_version = 1;`);
    old.close();
    const r = new Registry(file);
    expect(r.get('old')).toMatchObject({ version: 4, timeoutMs: 500, ...DEFAULT_SETTINGS, inputSchema: undefined, triggers: undefined, destinations: undefined });
    expect(r.db.pragma('user_version', { simple: true })).toBe(6);
  });

  it('keeps destinations with the version: a change of them is a new version, the same ones are not', () => {
    const r = new Registry(dbFile());
    const destinations = { subject: 'orders.done', url: 'https://example.com/hook' };
    expect(r.create('a', settings({ destinations })).destinations).toEqual(destinations);
    expect(r.deploy('a', settings({ destinations })).record.version).toBe(1);
    expect(r.deploy('a', settings({ destinations: { url: 'https://example.com/other' } })).record).toMatchObject({ version: 2, destinations: { url: 'https://example.com/other' } });
    expect(r.deploy('a', settings()).record).toMatchObject({ version: 3, destinations: undefined });
    const versions = r.db.prepare('SELECT version, destinations FROM function_versions WHERE name = ? ORDER BY version').all('a');
    expect(versions).toEqual([
      { version: 1, destinations: JSON.stringify(destinations) },
      { version: 2, destinations: JSON.stringify({ url: 'https://example.com/other' }) },
      { version: 3, destinations: null },
    ]);
  });

  it('keeps trigger subjects with the version, and gives each subject to one function', () => {
    const r = new Registry(dbFile());
    expect(r.create('a', settings({ triggers: { subjects: ['orders.new', 'logs.>'] } })).triggers).toEqual({ subjects: ['orders.new', 'logs.>'] });
    const taken = (() => {
      try {
        r.deploy('b', settings({ triggers: { subjects: ['orders.*', 'orders.new'] } }));
      } catch (err) {
        return err as SkiffError;
      }
      return undefined;
    })();
    expect(taken?.code).toBe('SKIFF_TRIGGER_TAKEN');
    expect(taken?.errors?.[0]?.field).toBe('body.triggers.subjects.1');
    expect(r.get('b')).toBeUndefined();
    // Overlapping wildcards are the operator's choice; the owner may redeploy with its own subject.
    expect(r.deploy('b', settings({ triggers: { subjects: ['orders.*'] } })).created).toBe(true);
    expect(r.deploy('a', settings({ triggers: { subjects: ['orders.new'] } })).record.version).toBe(2);
    r.remove('a');
    expect(r.deploy('c', settings({ triggers: { subjects: ['orders.new'] } })).created).toBe(true);
  });
});
