import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';

/** How a service proves who it is to NATS; `none` only for a server that asks nothing. */
export type NatsAuth =
  | { kind: 'none' }
  | { kind: 'user'; user: string; password: string }
  | { kind: 'token'; token: string }
  | { kind: 'creds'; file: string; creds: Uint8Array };

/** The variables, in one place for the services, `skiff up` and the testkit. */
export const NATS_AUTH_VARS = {
  user: 'SKIFF_NATS_USER',
  password: 'SKIFF_NATS_PASSWORD',
  token: 'SKIFF_NATS_TOKEN',
  creds: 'SKIFF_NATS_CREDS',
} as const;

const MAX_CREDS_BYTES = 64 * 1024;

/**
 * Reads a service's NATS credentials from its environment, once, at start-up: a user and
 * password, a token, or a `.creds` file (a user JWT and its nkey seed). More than one, a user
 * without a password, or a creds file that cannot be read is an error naming the variable.
 */
export function natsAuthFrom(env: Record<string, string | undefined>): NatsAuth {
  const user = env[NATS_AUTH_VARS.user] || undefined;
  const password = env[NATS_AUTH_VARS.password] || undefined;
  const token = env[NATS_AUTH_VARS.token] || undefined;
  const file = env[NATS_AUTH_VARS.creds] || undefined;
  const given = [user !== undefined || password !== undefined, token !== undefined, file !== undefined].filter(Boolean).length;
  if (given > 1) throw new Error(`set only one of ${NATS_AUTH_VARS.user}/${NATS_AUTH_VARS.password}, ${NATS_AUTH_VARS.token} and ${NATS_AUTH_VARS.creds}`);
  if (user !== undefined || password !== undefined) {
    if (user === undefined || password === undefined) throw new Error(`${NATS_AUTH_VARS.user} and ${NATS_AUTH_VARS.password} go together: set both`);
    return { kind: 'user', user, password };
  }
  if (token !== undefined) return { kind: 'token', token };
  if (file !== undefined) {
    let creds: Buffer;
    try {
      creds = readFileSync(file);
    } catch (err) {
      throw new Error(`${NATS_AUTH_VARS.creds}: cannot read ${file}: ${(err as Error).message}`);
    }
    if (creds.length > MAX_CREDS_BYTES || !creds.includes('-----BEGIN NATS USER JWT-----')) {
      throw new Error(`${NATS_AUTH_VARS.creds}: ${file} is not a NATS .creds file (a user JWT and its nkey seed)`);
    }
    return { kind: 'creds', file, creds: new Uint8Array(creds) };
  }
  return { kind: 'none' };
}

/** The environment that gives a service these user credentials (what `skiff up` and the testkit pass). */
export function natsUserEnv(user: string, password: string): Record<string, string> {
  return { [NATS_AUTH_VARS.user]: user, [NATS_AUTH_VARS.password]: password };
}

function authOptions(auth: NatsAuth): Partial<ConnectionOptions> {
  switch (auth.kind) {
    case 'user':
      return { user: auth.user, pass: auth.password };
    case 'token':
      return { token: auth.token };
    case 'creds':
      return { authenticator: credsAuthenticator(auth.creds) };
    case 'none':
      return {};
  }
}

export interface NatsConnectOptions {
  url: string;
  /** The connection's name, as the server's monitoring shows it. */
  name: string;
  auth: NatsAuth;
  /** Keep trying until the server is up at start-up, rather than failing at once. */
  waitOnFirstConnect?: boolean;
  /** Where replies to this connection's requests come (its NATS permissions allow only that). */
  inboxPrefix?: string;
}

/**
 * The one way Skiff services connect to NATS: with their credentials, reconnecting for ever.
 * Refused credentials (an authorization violation) fail the connect rather than retry quietly.
 */
export function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  return connect({
    servers: opts.url,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    noAsyncTraces: true,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
    ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
    ...authOptions(opts.auth),
  });
}
