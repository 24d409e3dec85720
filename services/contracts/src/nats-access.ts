import { MAX_TIMEOUT_MS } from './settings.js';
import { SUBJECTS } from './subjects.js';

/** The Skiff services that connect to NATS, each with credentials of its own. */
export const NATS_ROLES = ['gateway', 'scheduler', 'worker'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

export interface NatsPermissions {
  /** Subjects the role may publish on (NATS wildcards). */
  publish: readonly string[];
  /** Subjects the role may subscribe to. */
  subscribe: readonly string[];
  /**
   * May answer a request it received, once, on that request's reply subject (and on no other
   * inbox) within RESPONSE_WINDOW_MS: how workers and schedulers reply without being able to
   * publish on `_INBOX.>`.
   */
  allowResponses: boolean;
}

/**
 * How long after a request its answer is allowed. nats-server's own default is two minutes, and
 * a worker answering a call that ran longer was refused (the caller waited for its deadline):
 * the window is the longest deadline a call can have, and a minute more.
 */
export const RESPONSE_WINDOW_MS = MAX_TIMEOUT_MS + 60_000;

/** Any node's subject of the kind `nodeSubject` makes (`skiff.node.*.invoke`). */
const anyNode = (nodeSubject: (id: string) => string) => nodeSubject('*');

/**
 * What each service may do on NATS: exactly the subjects its code publishes and subscribes to
 * (services/contracts/src/subjects.ts), nothing more. Only the gateway makes requests, so only
 * it subscribes to inboxes, and no one else may publish there: a forged result for a call is
 * refused. A worker cannot publish invocations nor read them off skiff.invoke,
 * and nobody but the gateway can say a function changed. Workers share one role: a worker may
 * subscribe to any node's invoke subject (one user per node would need a server reload per
 * new node id).
 */
export const NATS_PERMISSIONS: Readonly<Record<NatsRole, NatsPermissions>> = Object.freeze({
  gateway: {
    publish: [SUBJECTS.invoke, anyNode(SUBJECTS.nodeInvoke), anyNode(SUBJECTS.nodeWarm), SUBJECTS.fnChanged, SUBJECTS.rollCall, SUBJECTS.nodesList],
    subscribe: [SUBJECTS.heartbeat, SUBJECTS.leave, '_INBOX.>'],
    allowResponses: false,
  },
  scheduler: {
    // Answers skiff.invoke (where to run a call) and skiff.nodes.list; sends no invocations.
    publish: [SUBJECTS.rollCall],
    subscribe: [SUBJECTS.invoke, SUBJECTS.nodesList, SUBJECTS.heartbeat, SUBJECTS.leave],
    allowResponses: true,
  },
  worker: {
    publish: [SUBJECTS.heartbeat, SUBJECTS.leave],
    subscribe: [anyNode(SUBJECTS.nodeInvoke), anyNode(SUBJECTS.nodeWarm), SUBJECTS.fnChanged, SUBJECTS.rollCall],
    allowResponses: true,
  },
});
