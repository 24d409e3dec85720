import Database from 'better-sqlite3';
import { DEFAULT_SETTINGS, SETTING_NAMES, SkiffError, type Destinations, type FunctionMode, type RunSettings, type SettingName } from '@skiff/contracts';
import type { ScheduleSetting } from '@skiff/events';

/** JSON Schemas a function declares for its input and output (documented and checked at the edge). */
export interface FunctionSchemas {
  inputSchema?: object | undefined;
  outputSchema?: object | undefined;
}

/** What starts the function besides a call to its API: NATS subjects and a schedule (README, Subject triggers, Schedules). */
export interface FunctionTriggers {
  subjects?: string[] | undefined;
  /** The subjects' messages are kept in a JetStream stream and run as async invocations. */
  durable?: boolean | undefined;
  schedule?: ScheduleSetting | undefined;
}

/** What a deploy sets; every field is part of a version. */
export interface FunctionSettings extends RunSettings, FunctionSchemas {
  image: string;
  imageDigest: string;
  mode: FunctionMode;
  timeoutMs: number;
  triggers?: FunctionTriggers | undefined;
  /** Where the outcomes of its async invocations go (README, Destinations). */
  destinations?: Destinations | undefined;
}

export interface FunctionRecord extends FunctionSettings {
  name: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

type Row = Record<string, string | number | null>;

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Registry column → record field, for every setting of a version. */
const FIELDS: [column: string, field: keyof FunctionSettings][] = [
  ['image', 'image'],
  ['image_digest', 'imageDigest'],
  ['mode', 'mode'],
  ['timeout_ms', 'timeoutMs'],
  ...SETTING_NAMES.map((k): [string, SettingName] => [snake(k), k]),
  ['input_schema', 'inputSchema'],
  ['output_schema', 'outputSchema'],
  ['triggers', 'triggers'],
  ['destinations', 'destinations'],
];
const JSON_FIELDS = new Set<keyof FunctionSettings>(['inputSchema', 'outputSchema', 'triggers', 'destinations']);
const COLS = FIELDS.map(([c]) => c).join(', ');
const PARAMS = FIELDS.map(([c]) => `@${c}`).join(', ');
const ASSIGN = FIELDS.map(([c]) => `${c} = @${c}`).join(', ');

const settingColumns = (table: string, names: SettingName[]) =>
  names.map((k) => `ALTER TABLE ${table} ADD COLUMN ${snake(k)} ${k === 'cpus' ? 'REAL' : 'INTEGER'} NOT NULL DEFAULT ${DEFAULT_SETTINGS[k]};`).join('\n');

/** Schema changes, applied in order; PRAGMA user_version records how many ran. */
const MIGRATIONS = [
  `CREATE TABLE functions (
     name TEXT PRIMARY KEY,
     version INTEGER NOT NULL,
     image TEXT NOT NULL,
     image_digest TEXT NOT NULL,
     mode TEXT NOT NULL,
     timeout_ms INTEGER NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE function_versions (
     name TEXT NOT NULL,
     version INTEGER NOT NULL,
     image TEXT NOT NULL,
     image_digest TEXT NOT NULL,
     mode TEXT NOT NULL,
     timeout_ms INTEGER NOT NULL,
     created_at TEXT NOT NULL,
     PRIMARY KEY (name, version)
   );
   CREATE TABLE api_keys (
     id TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL UNIQUE,
     role TEXT NOT NULL,
     created_at TEXT NOT NULL
   );`,
  // Resource limits per version; existing rows get the defaults.
  ['functions', 'function_versions'].map((t) => settingColumns(t, ['memoryMb', 'cpus', 'maxProcesses', 'tmpMb'])).join('\n'),
  // Pool settings and the function's own schemas.
  ['functions', 'function_versions']
    .map((t) => `${settingColumns(t, ['concurrency', 'minInstances', 'maxInstances', 'idleTimeoutMs'])}
                 ALTER TABLE ${t} ADD COLUMN input_schema TEXT;
                 ALTER TABLE ${t} ADD COLUMN output_schema TEXT;`)
    .join('\n'),
  // Retries of async invocations.
  ['functions', 'function_versions'].map((t) => settingColumns(t, ['asyncAttempts', 'asyncBackoffMs', 'asyncBackoffCapMs', 'asyncMaxAgeMs'])).join('\n'),
  // Subject triggers (JSON), none for existing rows.
  ['functions', 'function_versions'].map((t) => `ALTER TABLE ${t} ADD COLUMN triggers TEXT;`).join('\n'),
  // Destinations of async outcomes (JSON), none for existing rows.
  ['functions', 'function_versions'].map((t) => `ALTER TABLE ${t} ADD COLUMN destinations TEXT;`).join('\n'),
];

function toRecord(row: Row): FunctionRecord {
  const out: Record<string, unknown> = { name: row.name, version: row.version, createdAt: row.created_at, updatedAt: row.updated_at };
  for (const [column, field] of FIELDS) {
    const v = row[column];
    out[field] = JSON_FIELDS.has(field) ? (v === null ? undefined : JSON.parse(String(v))) : v;
  }
  return out as unknown as FunctionRecord;
}

function toParams(name: string, version: number, s: FunctionSettings): Record<string, unknown> {
  const params: Record<string, unknown> = { name, version, now: new Date().toISOString() };
  for (const [column, field] of FIELDS) {
    const v = s[field];
    params[column] = JSON_FIELDS.has(field) ? (v === undefined ? null : JSON.stringify(v)) : v;
  }
  return params;
}

function sameSettings(row: Row, s: FunctionSettings): boolean {
  const a = toParams('', 0, toRecord(row));
  const b = toParams('', 0, s);
  return FIELDS.every(([c]) => a[c] === b[c]);
}

/** The embedded registry: functions, their versions and API keys, in one SQLite file (WAL). */
export class Registry {
  readonly db: Database.Database;
  private readonly stmts;
  /**
   * Current versions and keys as last read, so the invoke path does not query SQLite. Every
   * write goes through this class and clears them; the file belongs to one gateway process.
   */
  private readonly fnCache = new Map<string, FunctionRecord | undefined>();
  private readonly keyCache = new Map<string, { id: string; role: string } | undefined>();

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.stmts = {
      get: this.db.prepare<[string], Row>('SELECT * FROM functions WHERE name = ?'),
      list: this.db.prepare<[], Row>('SELECT * FROM functions ORDER BY name'),
      withTriggers: this.db.prepare<[], Row>('SELECT * FROM functions WHERE triggers IS NOT NULL'),
      insert: this.db.prepare(`INSERT INTO functions (name, version, ${COLS}, created_at, updated_at) VALUES (@name, @version, ${PARAMS}, @now, @now)`),
      update: this.db.prepare(`UPDATE functions SET version = @version, ${ASSIGN}, updated_at = @now WHERE name = @name`),
      insertVersion: this.db.prepare(`INSERT INTO function_versions (name, version, ${COLS}, created_at) VALUES (@name, @version, ${PARAMS}, @now)`),
      delete: this.db.prepare<[string]>('DELETE FROM functions WHERE name = ?'),
      deleteVersions: this.db.prepare<[string]>('DELETE FROM function_versions WHERE name = ?'),
      keyByHash: this.db.prepare<[string], { id: string; role: string }>('SELECT id, role FROM api_keys WHERE token_hash = ?'),
      keyById: this.db.prepare<[string], { id: string }>('SELECT id FROM api_keys WHERE id = ?'),
      upsertKey: this.db.prepare(
        `INSERT INTO api_keys (id, token_hash, role, created_at) VALUES (@id, @hash, @role, @now)
         ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, role = excluded.role`,
      ),
    };
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    for (let i = current; i < MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[i]!);
        this.db.pragma(`user_version = ${i + 1}`);
      })();
    }
  }

  get(name: string): FunctionRecord | undefined {
    if (this.fnCache.has(name)) return this.fnCache.get(name);
    const row = this.stmts.get.get(name);
    const record = row && toRecord(row);
    if (record) this.fnCache.set(name, record);
    return record;
  }

  list(): FunctionRecord[] {
    return this.stmts.list.all().map(toRecord);
  }

  /** Inserts a new function; SKIFF_FN_EXISTS if the name is taken. */
  create(name: string, s: FunctionSettings): FunctionRecord {
    return this.db.transaction(() => {
      if (this.stmts.get.get(name)) throw new SkiffError('SKIFF_FN_EXISTS', `function "${name}" already exists; use PUT to deploy a new version`);
      this.write(name, 1, s, true);
      return this.get(name)!;
    })();
  }

  /** Creates the function or records a new version; unchanged settings keep the version. */
  deploy(name: string, s: FunctionSettings): { record: FunctionRecord; created: boolean } {
    return this.db.transaction(() => {
      const row = this.stmts.get.get(name);
      if (!row) {
        this.write(name, 1, s, true);
        return { record: this.get(name)!, created: true };
      }
      if (!sameSettings(row, s)) this.write(name, Number(row.version) + 1, s, false);
      return { record: this.get(name)!, created: false };
    })();
  }

  private write(name: string, version: number, s: FunctionSettings, isNew: boolean): void {
    this.assertSubjectsFree(name, s.triggers?.subjects ?? []);
    this.fnCache.delete(name);
    const params = toParams(name, version, s);
    (isNew ? this.stmts.insert : this.stmts.update).run(params);
    this.stmts.insertVersion.run(params);
  }

  /**
   * One function per trigger subject: two functions on the same subject would each get half
   * its messages (one queue group), which nobody means. Overlapping wildcards are allowed.
   */
  assertSubjectsFree(name: string, subjects: string[]): void {
    if (subjects.length === 0) return;
    for (const row of this.stmts.withTriggers.all()) {
      if (row.name === name) continue;
      const theirs = new Set(toRecord(row).triggers?.subjects ?? []);
      const taken = subjects.findIndex((subject) => theirs.has(subject));
      if (taken >= 0) {
        const field = `body.triggers.subjects.${taken}`;
        throw new SkiffError('SKIFF_TRIGGER_TAKEN', `${field}: subject "${subjects[taken]}" already triggers function "${row.name}"`, { errors: [{ field, message: `already triggers function "${row.name}"` }] });
      }
    }
  }

  /** Removes the function and its history; false if there was none. */
  remove(name: string): boolean {
    this.fnCache.delete(name);
    return this.db.transaction(() => {
      const { changes } = this.stmts.delete.run(name);
      this.stmts.deleteVersions.run(name);
      return changes > 0;
    })();
  }

  /** Image digests of every version of every deployed function (never garbage-collected). */
  deployedDigests(): Set<string> {
    const rows = this.db.prepare<[], { image_digest: string }>('SELECT DISTINCT image_digest FROM function_versions').all();
    return new Set(rows.map((r) => r.image_digest));
  }

  findKey(tokenHash: string): { id: string; role: string } | undefined {
    if (this.keyCache.has(tokenHash)) return this.keyCache.get(tokenHash);
    const key = this.stmts.keyByHash.get(tokenHash);
    // Only known keys are kept: unknown hashes from bad requests must not grow the cache.
    if (key) this.keyCache.set(tokenHash, key);
    return key;
  }

  hasKey(id: string): boolean {
    return this.stmts.keyById.get(id) !== undefined;
  }

  putKey(id: string, tokenHash: string, role: string): void {
    this.keyCache.clear();
    this.stmts.upsertKey.run({ id, hash: tokenHash, role, now: new Date().toISOString() });
  }

  close(): void {
    this.db.close();
  }
}
