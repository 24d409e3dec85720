import Database from 'better-sqlite3';
import { SkiffError, type FunctionMode, type Limits } from '@skiff/contracts';

/** What a deploy sets; every field is part of a version. */
export interface FunctionSettings extends Limits {
  image: string;
  imageDigest: string;
  mode: FunctionMode;
  timeoutMs: number;
}

export interface FunctionRecord extends FunctionSettings {
  name: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

interface FunctionRow {
  name: string;
  version: number;
  image: string;
  image_digest: string;
  mode: FunctionMode;
  timeout_ms: number;
  memory_mb: number;
  cpus: number;
  max_processes: number;
  tmp_mb: number;
  created_at: string;
  updated_at: string;
}

/** Settings columns, in the order of FunctionSettings; used by every statement that writes them. */
const SETTING_COLUMNS = ['image', 'image_digest', 'mode', 'timeout_ms', 'memory_mb', 'cpus', 'max_processes', 'tmp_mb'] as const;
const SETTING_PARAMS = ['@image', '@imageDigest', '@mode', '@timeoutMs', '@memoryMb', '@cpus', '@maxProcesses', '@tmpMb'] as const;
const COLS = SETTING_COLUMNS.join(', ');
const PARAMS = SETTING_PARAMS.join(', ');
const ASSIGN = SETTING_COLUMNS.map((c, i) => `${c} = ${SETTING_PARAMS[i]}`).join(', ');

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
  ['functions', 'function_versions']
    .map(
      (t) => `ALTER TABLE ${t} ADD COLUMN memory_mb INTEGER NOT NULL DEFAULT 128;
              ALTER TABLE ${t} ADD COLUMN cpus REAL NOT NULL DEFAULT 1;
              ALTER TABLE ${t} ADD COLUMN max_processes INTEGER NOT NULL DEFAULT 64;
              ALTER TABLE ${t} ADD COLUMN tmp_mb INTEGER NOT NULL DEFAULT 64;`,
    )
    .join('\n'),
];

function toRecord(row: FunctionRow): FunctionRecord {
  return {
    name: row.name,
    version: row.version,
    image: row.image,
    imageDigest: row.image_digest,
    mode: row.mode,
    timeoutMs: row.timeout_ms,
    memoryMb: row.memory_mb,
    cpus: row.cpus,
    maxProcesses: row.max_processes,
    tmpMb: row.tmp_mb,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function sameSettings(row: FunctionRow, s: FunctionSettings): boolean {
  const r = toRecord(row);
  return (Object.keys(s) as (keyof FunctionSettings)[]).every((k) => r[k] === s[k]);
}

/** The embedded registry: functions, their versions and API keys, in one SQLite file (WAL). */
export class Registry {
  readonly db: Database.Database;
  private readonly stmts;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.stmts = {
      get: this.db.prepare<[string], FunctionRow>('SELECT * FROM functions WHERE name = ?'),
      list: this.db.prepare<[], FunctionRow>('SELECT * FROM functions ORDER BY name'),
      insert: this.db.prepare(
        `INSERT INTO functions (name, version, ${COLS}, created_at, updated_at) VALUES (@name, @version, ${PARAMS}, @now, @now)`,
      ),
      update: this.db.prepare(
        `UPDATE functions SET version = @version, ${ASSIGN}, updated_at = @now WHERE name = @name`,
      ),
      insertVersion: this.db.prepare(
        `INSERT INTO function_versions (name, version, ${COLS}, created_at) VALUES (@name, @version, ${PARAMS}, @now)`,
      ),
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
    const row = this.stmts.get.get(name);
    return row && toRecord(row);
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
      if (!sameSettings(row, s)) this.write(name, row.version + 1, s, false);
      return { record: this.get(name)!, created: false };
    })();
  }

  private write(name: string, version: number, s: FunctionSettings, isNew: boolean): void {
    const params = { name, version, ...s, now: new Date().toISOString() };
    (isNew ? this.stmts.insert : this.stmts.update).run(params);
    this.stmts.insertVersion.run(params);
  }

  /** Removes the function and its history; false if there was none. */
  remove(name: string): boolean {
    return this.db.transaction(() => {
      const { changes } = this.stmts.delete.run(name);
      this.stmts.deleteVersions.run(name);
      return changes > 0;
    })();
  }

  findKey(tokenHash: string): { id: string; role: string } | undefined {
    return this.stmts.keyByHash.get(tokenHash);
  }

  hasKey(id: string): boolean {
    return this.stmts.keyById.get(id) !== undefined;
  }

  putKey(id: string, tokenHash: string, role: string): void {
    this.stmts.upsertKey.run({ id, hash: tokenHash, role, now: new Date().toISOString() });
  }

  close(): void {
    this.db.close();
  }
}
