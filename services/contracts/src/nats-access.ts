import { MAX_TIMEOUT_MS } from './settings.js';
import { JETSTREAM, SUBJECTS } from './subjects.js';

/** The Skiff services that connect to NATS, each with credentials of its own, and `events`: a credential for the platform's users to publish events with. */
export const NATS_ROLES = ['gateway', 'scheduler', 'worker', 'events'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

export interface NatsPermissions {
  /** Subjects the role may publish on (NATS wildcards). */
  publish: readonly string[];
  /** Subjects the role may subscribe to. */
  subscribe: readonly string[];
  /** Of those allowed, the ones it may not publish on, or receive (deny wins over allow in nats-server). */
  publishDeny?: readonly string[];
  subscribeDeny?: readonly string[];
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

/**
 * Where replies to a service's own requests arrive. The gateway's are the default `_INBOX`; the
 * scheduler's (its JetStream API calls, pulled invocations and workers' answers) have a prefix of
 * their own, so it reads no one else's replies.
 */
export const INBOX_PREFIXES = { scheduler: '_INBOX_SCHEDULER', events: '_INBOX_EVENTS' } as const;

/**
 * Subjects that belong to the platform and nats-server, none of them a trigger subject
 * (triggerSubjectProblem): the events credential may not publish there, and a trigger
 * message's reply subject there is not answered (a forged reply to a service's request).
 */
export const PLATFORM_SUBJECTS = ['skiff.>', '_INBOX.>', `${INBOX_PREFIXES.scheduler}.>`, '$JS.>', '$SYS.>', '$KV.>', '$O.>'] as const;

const S = JETSTREAM;
/** JetStream API subjects for the named streams (`$JS.API.<verb>.<stream>`, and `.>` below it). */
const api = (verbs: string[], streams: string[]) => verbs.flatMap((v) => streams.flatMap((s) => [`$JS.API.${v}.${s}`, `$JS.API.${v}.${s}.>`]));
const ALL_STREAMS = [S.asyncStream, S.deadStream, S.recordsStream, S.triggersStream, S.outcomesStream, S.schedulesStream];
/** Create or bring up to date the event streams (both services ensure them as they start). */
const ENSURE_STREAMS = ['$JS.API.INFO', ...api(['STREAM.INFO', 'STREAM.CREATE', 'STREAM.UPDATE'], ALL_STREAMS)];

/**
 * Durable triggers' streams (SKIFF_EVENTS_<fn>), one per function: stream names have no
 * wildcard of their own, so rules on them name any stream (`*`), with the platform's own
 * streams denied where they must not be touched.
 */
const ANY_STREAM = '*';

/** Any node's subject of the kind `nodeSubject` makes (`skiff.node.*.invoke`). */
const anyNode = (nodeSubject: (id: string) => string) => nodeSubject('*');

/**
 * What each service may do on NATS: exactly the subjects its code publishes and subscribes to
 * (services/contracts/src/subjects.ts), nothing more. Only the gateway subscribes to `_INBOX.>`
 * (the scheduler and the events credential have inbox prefixes of their own), and no one else may
 * publish there: a forged result for a call is refused. A worker cannot publish invocations nor read them off skiff.invoke,
 * and nobody but the gateway can say a function changed. Workers share one role: a worker may
 * subscribe to any node's invoke subject (one user per node would need a server reload per
 * new node id).
 */
export const NATS_PERMISSIONS: Readonly<Record<NatsRole, NatsPermissions>> = Object.freeze({
  gateway: {
    publish: [
      SUBJECTS.invoke,
      anyNode(SUBJECTS.nodeInvoke),
      anyNode(SUBJECTS.nodeWarm),
      SUBJECTS.fnChanged,
      SUBJECTS.rollCall,
      SUBJECTS.nodesList,
      SUBJECTS.health,
      // Async: accept onto the queue, read records and dead letters, redrive, purge.
      SUBJECTS.asyncInvocation('>'),
      SUBJECTS.record('>'),
      ...ENSURE_STREAMS,
      ...api(['DIRECT.GET'], [S.asyncStream, S.deadStream, S.recordsStream, S.triggersStream]),
      ...api(['STREAM.MSG.DELETE'], [S.deadStream]),
      ...api(['STREAM.PURGE'], [S.asyncStream]),
      // Subject triggers: each function's entry, written at deploy, delete and start.
      SUBJECTS.trigger('*'),
      // Durable triggers: each function's stream, made, changed and removed with it.
      ...api(['STREAM.CREATE', 'STREAM.UPDATE', 'STREAM.DELETE', 'STREAM.INFO'], [ANY_STREAM]),
      '$JS.API.STREAM.NAMES',
    ],
    publishDeny: api(['STREAM.DELETE'], ALL_STREAMS),
    subscribe: [SUBJECTS.heartbeat, SUBJECTS.leave, '_INBOX.>'],
    allowResponses: false,
  },
  scheduler: {
    // Answers skiff.invoke (where to run a call) and skiff.nodes.list; sends a node the async
    // invocations it pulls from the one durable consumer, and records and buries them.
    publish: [
      SUBJECTS.rollCall,
      anyNode(SUBJECTS.nodeInvoke),
      SUBJECTS.record('>'),
      SUBJECTS.deadLetter('>'),
      ...ENSURE_STREAMS,
      ...api(['DIRECT.GET'], [S.recordsStream]),
      ...api(['CONSUMER.CREATE', 'CONSUMER.DURABLE.CREATE', 'CONSUMER.INFO', 'CONSUMER.MSG.NEXT'], [S.asyncStream]),
      `$JS.ACK.${S.asyncStream}.>`,
      // Subject triggers and schedules: ordered consumers read every function's entry (pulled, no acks).
      ...api(['CONSUMER.CREATE', 'CONSUMER.DELETE', 'CONSUMER.INFO', 'CONSUMER.MSG.NEXT'], [S.triggersStream]),
      // Durable triggers: pulls each function's stream through one durable consumer, and queues
      // every message as an async invocation.
      SUBJECTS.asyncInvocation('>'),
      ...api(['STREAM.INFO', 'CONSUMER.CREATE', 'CONSUMER.DURABLE.CREATE', 'CONSUMER.INFO', 'CONSUMER.MSG.NEXT'], [ANY_STREAM]),
      `$JS.ACK.${ANY_STREAM}.${S.durableTriggerConsumer}.>`,
      // Destinations: outcome events into the outbox, and out of it through one durable consumer.
      SUBJECTS.outcome('subject', '*'),
      SUBJECTS.outcome('url', '*'),
      ...api(['CONSUMER.CREATE', 'CONSUMER.DURABLE.CREATE', 'CONSUMER.INFO', 'CONSUMER.MSG.NEXT'], [S.outcomesStream]),
      `$JS.ACK.${S.outcomesStream}.>`,
      // Schedules: each tick queued as an async invocation (asyncInvocation above, under an id
      // only the function's name and the tick decide), the last tick fired noted and read back,
      // and a missed tick's queued message looked up before it is reported.
      SUBJECTS.tick('*'),
      ...api(['DIRECT.GET'], [S.asyncStream, S.schedulesStream]),
      // ...and each event on its destination subject: the users' own, anything a destination
      // may be (destinationSubjectProblem). `>` minus the platform's subjects below.
      '>',
    ],
    // With `>` allowed, this list is what keeps the scheduler to its own part of the platform:
    // every other service's subject, the triggers table, all inboxes (its answers pass as
    // responses), the server's subjects, and the JetStream API calls that delete, purge, reset or
    // read what it has no business with. nats-server's deny wins, so it names exactly what the
    // scheduler does not do (its own subjects above stay open).
    publishDeny: [
      'skiff.*',
      SUBJECTS.heartbeat,
      SUBJECTS.leave,
      SUBJECTS.fnChanged,
      SUBJECTS.nodesList,
      anyNode(SUBJECTS.nodeWarm),
      SUBJECTS.trigger('>'),
      `${SUBJECTS.tick('*')}.>`,
      '_INBOX.>',
      `${INBOX_PREFIXES.scheduler}.>`,
      `${INBOX_PREFIXES.events}.>`,
      '$SYS.>',
      '$KV.>',
      '$O.>',
      '$JS.EVENT.>',
      ...['STREAM.DELETE', 'STREAM.PURGE', 'STREAM.MSG', 'STREAM.SNAPSHOT', 'STREAM.RESTORE', 'STREAM.LEADER', 'STREAM.PEER', 'ACCOUNT', 'META', 'SERVER'].map((v) => `$JS.API.${v}.>`),
      '$JS.API.STREAM.LIST',
      '$JS.API.STREAM.NAMES',
      ...api(['DIRECT.GET', 'CONSUMER.CREATE', 'CONSUMER.DURABLE.CREATE', 'CONSUMER.MSG.NEXT'], [S.deadStream]),
      ...api(['DIRECT.GET'], [S.triggersStream, S.outcomesStream]),
      ...api(['CONSUMER.DELETE'], [S.asyncStream, S.outcomesStream, S.deadStream, S.recordsStream]),
      ...[S.deadStream, S.recordsStream, S.triggersStream].map((s) => `$JS.ACK.${s}.>`),
    ],
    // Trigger subjects are the users' own and may be anything outside the platform's (see
    // triggerSubjectProblem), so the scheduler subscribes to `>` minus what it must not read:
    // calls placed on a node, the queues and records (it reads those through JetStream), the
    // other services' inboxes and the server's own subjects.
    subscribe: ['>'],
    subscribeDeny: [
      anyNode(SUBJECTS.nodeInvoke),
      anyNode(SUBJECTS.nodeWarm),
      SUBJECTS.fnChanged,
      SUBJECTS.rollCall,
      SUBJECTS.asyncInvocation('>'),
      SUBJECTS.record('>'),
      SUBJECTS.deadLetter('>'),
      SUBJECTS.trigger('>'),
      'skiff.outcome.>',
      SUBJECTS.tick('>'),
      '_INBOX.>',
      `${INBOX_PREFIXES.events}.>`,
      '$JS.>',
      '$SYS.>',
      '$KV.>',
      '$O.>',
    ],
    allowResponses: true,
  },
  worker: {
    publish: [SUBJECTS.heartbeat, SUBJECTS.leave],
    subscribe: [anyNode(SUBJECTS.nodeInvoke), anyNode(SUBJECTS.nodeWarm), SUBJECTS.fnChanged, SUBJECTS.rollCall, SUBJECTS.health],
    allowResponses: true,
  },
  // A credential for the platform's users to publish events (trigger subjects) with: anything
  // but the platform's and the server's subjects; it reads only replies to its own requests.
  events: {
    publish: ['>'],
    publishDeny: PLATFORM_SUBJECTS,
    subscribe: [`${INBOX_PREFIXES.events}.>`],
    allowResponses: false,
  },
});
