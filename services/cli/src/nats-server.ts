import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INBOX_PREFIXES, NATS_PERMISSIONS, NATS_ROLES, RESPONSE_WINDOW_MS, type NatsPermissions, type NatsRole } from '@skiff/contracts';
import { REPO_ROOT } from './paths.js';

/**
 * The nats-server Skiff starts itself (`skiff up`, and the testkit the same way): the settings
 * of infra/nats/nats.conf plus an `authorization` block with one user per service, each
 * allowed only its own subjects (NATS_PERMISSIONS). Passwords are generated on the first
 * start into the NATS directory of the data dir and kept; the server's config is written anew
 * from them on every start, so a change of permissions in a new release takes effect.
 */

export interface NatsUser {
  user: string;
  password: string;
}

export type NatsCredentials = Record<NatsRole, NatsUser>;

/** A user beyond the services' (the testkit's benchmark peer), with permissions of its own. */
export interface ExtraNatsUser extends NatsUser {
  permissions: NatsPermissions;
}

export interface PreparedNatsServer {
  /** The generated server config, mode 0600 (it holds the passwords). */
  configFile: string;
  credentials: NatsCredentials;
}

export const NATS_BASE_CONFIG = join(REPO_ROOT, 'infra/nats/nats.conf');
const CREDENTIALS_FILE = 'credentials.json';
const CONFIG_FILE = 'nats-server.conf';

/** Writes a secret file whole (a temporary file renamed into place), readable by its owner only. */
function writeSecret(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600, flag: 'w' });
  renameSync(tmp, file);
}

function generated(): NatsCredentials {
  const out = {} as NatsCredentials;
  for (const role of NATS_ROLES) out[role] = { user: `skiff-${role}`, password: randomBytes(32).toString('base64url') };
  return out;
}

/** The file's credentials; `added` when a role it has none for (new in this release) got fresh ones. */
function parseCredentials(file: string, text: string): { credentials: NatsCredentials; added: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not JSON; remove it to generate new NATS credentials`);
  }
  const out = {} as NatsCredentials;
  let added = false;
  for (const role of NATS_ROLES) {
    const c = (json as Record<string, Partial<NatsUser>> | null)?.[role];
    if (c === undefined && role === 'events') {
      out[role] = generated()[role];
      added = true;
      continue;
    }
    if (typeof c?.user !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(c.user) || typeof c.password !== 'string' || !/^[A-Za-z0-9_-]{16,128}$/.test(c.password)) {
      throw new Error(`${file} has no valid credentials for the ${role}; remove it to generate new ones`);
    }
    out[role] = { user: c.user, password: c.password };
  }
  return { credentials: out, added };
}

/**
 * The services' NATS credentials in `dir`: read from `credentials.json`, or generated and
 * written there (mode 0600) on the first start. A file others may read is refused: its
 * passwords may have been read.
 */
export function natsCredentials(dir: string): NatsCredentials {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, CREDENTIALS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const fresh = generated();
    writeSecret(file, `${JSON.stringify(fresh, null, 2)}\n`);
    return fresh;
  }
  if ((statSync(file).mode & 0o077) !== 0) throw new Error(`${file} may be read by others (mode ${(statSync(file).mode & 0o777).toString(8)}); chmod 600 it, or remove it to generate new NATS credentials`);
  const { credentials, added } = parseCredentials(file, text);
  if (added) writeSecret(file, `${JSON.stringify(credentials, null, 2)}\n`);
  return credentials;
}

const quote = (s: string) => JSON.stringify(s);
const list = (subjects: readonly string[]) => `[${subjects.map(quote).join(', ')}]`;

/** `{ allow: [...], deny: [...] }`: deny wins, also for messages a wildcard subscription would get. */
const rule = (allow: readonly string[], deny: readonly string[] | undefined) => `{ allow: ${list(allow)}${deny?.length ? `, deny: ${list(deny)}` : ''} }`;

function userBlock(u: NatsUser, p: NatsPermissions): string {
  const perms = [`publish: ${rule(p.publish, p.publishDeny)}`, `subscribe: ${rule(p.subscribe, p.subscribeDeny)}`];
  if (p.allowResponses) perms.push(`allow_responses: { max: 1, expires: "${RESPONSE_WINDOW_MS}ms" }`);
  return `    { user: ${quote(u.user)}, password: ${quote(u.password)}, permissions: { ${perms.join(', ')} } }`;
}

/** The server config: the base settings, then every user with its permissions. No user: no access. */
export function natsServerConfig(credentials: NatsCredentials, extraUsers: readonly ExtraNatsUser[] = []): string {
  const users = [...NATS_ROLES.map((role) => userBlock(credentials[role], NATS_PERMISSIONS[role])), ...extraUsers.map((u) => userBlock(u, u.permissions))];
  return [
    `# Written by Skiff on every start from ${NATS_BASE_CONFIG} and ${CREDENTIALS_FILE}; edits here are lost.`,
    readFileSync(NATS_BASE_CONFIG, 'utf8').trimEnd(),
    '',
    '# One user per Skiff service, each allowed only the subjects its role needs (contracts nats-access.ts).',
    'authorization {',
    '  users: [',
    ...users,
    '  ]',
    '}',
    '',
  ].join('\n');
}

/** Credentials (kept, or generated on the first start) and a fresh server config in `dir`. */
export function prepareNatsServer(dir: string, extraUsers: readonly ExtraNatsUser[] = []): PreparedNatsServer {
  const credentials = natsCredentials(dir);
  const configFile = join(dir, CONFIG_FILE);
  writeSecret(configFile, natsServerConfig(credentials, extraUsers));
  return { configFile, credentials };
}

/**
 * Also `<role>.env` in `dir` for each role, `SKIFF_NATS_USER`/`SKIFF_NATS_PASSWORD` lines (mode
 * 0600), for service managers that read settings from files: the systemd units load them
 * with `EnvironmentFile=` (`skiff nats-config`).
 */
export function writeRoleEnvFiles(dir: string, credentials: NatsCredentials): string[] {
  return NATS_ROLES.map((role) => {
    if (role === 'events') return writeEventsCredentials(dir, credentials);
    const file = join(dir, `${role}.env`);
    writeSecret(file, `SKIFF_NATS_USER=${credentials[role].user}\nSKIFF_NATS_PASSWORD=${credentials[role].password}\n`);
    return file;
  });
}

/**
 * The events credential (publish events on trigger subjects), as `events.env` in `dir`, mode
 * 0600: `skiff up` prints its path, never the password. Requests must use its inbox prefix.
 */
export function writeEventsCredentials(dir: string, credentials: NatsCredentials): string {
  const file = join(dir, 'events.env');
  const c = credentials.events;
  writeSecret(file, `# Publish events on trigger subjects, e.g. nats --user "$SKIFF_NATS_USER" --password "$SKIFF_NATS_PASSWORD" --inbox-prefix ${INBOX_PREFIXES.events} request orders.new '{}'\nSKIFF_NATS_USER=${c.user}\nSKIFF_NATS_PASSWORD=${c.password}\nSKIFF_NATS_INBOX_PREFIX=${INBOX_PREFIXES.events}\n`);
  return file;
}

/** nats-server's arguments: the generated config, the port, the JetStream store. */
export function natsServerArgs(configFile: string, port: number, storeDir: string): string[] {
  return ['-c', configFile, '-p', String(port), '-sd', storeDir];
}
