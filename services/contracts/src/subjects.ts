/** NATS subjects used between Skiff services. Everything Skiff owns lives under `skiff.`. */
export const SUBJECTS = {
  /** gateway → scheduler (queue group): where should this invocation run? (its headers; answered with a placement notice) */
  invoke: 'skiff.invoke',
  /** worker → every scheduler: liveness and load. */
  heartbeat: 'skiff.node.heartbeat',
  /** worker → every scheduler: the node is leaving (graceful stop). */
  leave: 'skiff.node.leave',
  /** gateway → every worker: a function was redeployed or deleted (old instances drain). */
  fnChanged: 'skiff.fn.changed',
  /**
   * a process that keeps a node table (scheduler, gateway), as it starts → every worker: beat
   * now, so it need not wait a whole heartbeat period (or more) to learn of the live nodes.
   */
  rollCall: 'skiff.nodes.rollcall',
  /** gateway → every scheduler and worker (no queue group): each answers how it is (healthAnswerSchema). */
  health: 'skiff.health',
  /** anyone → one scheduler: the current node table. */
  nodesList: 'skiff.nodes.list',
  /** gateway → one worker: an invocation placed on that node. */
  nodeInvoke: (nodeId: string) => `skiff.node.${nodeId}.invoke`,
  /** gateway → one worker: start a stream function version's minInstances there (invocation headers, no body). */
  nodeWarm: (nodeId: string) => `skiff.node.${nodeId}.warm`,
  /** gateway → JetStream (stream SKIFF_ASYNC): one accepted async invocation, `<fn>.<tail>` being its id. */
  asyncInvocation: (invocationId: string) => `skiff.async.${invocationId}`,
  /** scheduler or gateway → JetStream (stream SKIFF_RECORDS): the last state of an async invocation. */
  record: (invocationId: string) => `skiff.record.${invocationId}`,
  /** scheduler → JetStream (stream SKIFF_DEAD): an async invocation whose attempts are spent. */
  deadLetter: (invocationId: string) => `skiff.dead.${invocationId}`,
  /** gateway → JetStream (stream SKIFF_TRIGGERS): a function's trigger subjects, the last write kept. */
  trigger: (fn: string) => `skiff.trigger.${fn}`,
  /** scheduler → JetStream (stream SKIFF_OUTCOMES): one outcome event on its way to one destination (`subject` or `url`). */
  outcome: (kind: 'subject' | 'url', eventId: string) => `skiff.outcome.${kind}.${eventId}`,
  /** scheduler → JetStream (stream SKIFF_SCHEDULES): the last tick of a function's schedule that was fired. */
  tick: (fn: string) => `skiff.tick.${fn}`,
  /** Not published: the event subject a scheduled invocation carries, so the function sees what started it. */
  scheduleEvent: (fn: string) => `skiff.schedule.${fn}`,
} as const;

/** The JetStream streams and key-value buckets of the platform. */
export const JETSTREAM = {
  /** Accepted async invocations, until a scheduler has run them (work queue, file storage). */
  asyncStream: 'SKIFF_ASYNC',
  /** The one durable consumer every scheduler pulls from, so each invocation runs on one. */
  asyncConsumer: 'skiff-schedulers',
  /** Dead letters: kept until redriven or purged, never expired. */
  deadStream: 'SKIFF_DEAD',
  /** Invocation records, one subject per id (the last write kept), for SKIFF_INVOCATION_RETENTION_MS. */
  recordsStream: 'SKIFF_RECORDS',
  /** Each function's subject triggers (and what an invocation of it needs), one subject per function. */
  triggersStream: 'SKIFF_TRIGGERS',
  /** Outcome events of async invocations, until sent to their destination (work queue, file storage). */
  outcomesStream: 'SKIFF_OUTCOMES',
  /** The one durable consumer every scheduler pulls outcome events from. */
  outcomesConsumer: 'skiff-outcome-senders',
  /** The durable consumer of every durable trigger's stream, shared by the schedulers. */
  durableTriggerConsumer: 'skiff-durable-triggers',
  /** The last tick fired of each function's schedule, one subject per function, so a starting scheduler finds missed ones. */
  schedulesStream: 'SKIFF_SCHEDULES',
} as const;

/**
 * The stream that holds the messages of a function's durable trigger subjects (`durable: true`)
 * until a scheduler queues them as async invocations. One per function: JetStream refuses
 * streams whose subjects overlap, so two functions cannot both hold the same messages.
 */
export const durableTriggerStream = (fn: string) => `SKIFF_EVENTS_${fn}`;

export const QUEUE_GROUPS = {
  schedulers: 'skiff-schedulers',
  /** Every scheduler subscribes to each trigger subject in this group, so a message runs once. */
  triggers: 'skiff-triggers',
} as const;

/** Call ids travel in headers and name files, so they start with a letter or digit (never ".."). */
export const CALL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * An async invocation's id: its function's name, a dot, and 32 hex digits (random, or derived from
 * the caller's Idempotency-Key). It is the invocation's subject tail and record key, so the
 * function's invocations are one subject filter away.
 */
export const INVOCATION_ID_PATTERN = /^[a-z][a-z0-9-]{0,62}\.[0-9a-f]{32}$/;

/** An Idempotency-Key header: printable ASCII, at most 256 characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x20-\x7e]{1,256}$/;

/** Node ids become subject tokens, so they are restricted to characters safe there. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Function names, as the API accepts them (openapi/gateway.yaml, FunctionName). Every message
 * that names a function is checked against it on receipt: a name also becomes a cgroup path,
 * a uid range's key and a file name on the worker, so nothing else may get that far.
 */
export const FUNCTION_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * A trigger subject as a function's settings give it: dot-separated tokens of [A-Za-z0-9_-] or
 * `*`, and `>` only as the last token. Subjects the platform owns are refused apart
 * (TRIGGER_RESERVED).
 */
export const TRIGGER_SUBJECT_PATTERN = /^(?:[A-Za-z0-9_-]+|\*)(?:\.(?:[A-Za-z0-9_-]+|\*))*(?:\.>)?$|^>$/;
/** A subject an event arrived on: the same tokens, no wildcards (`$` and `_INBOX` never reach a trigger). */
export const TRIGGER_EVENT_SUBJECT_PATTERN = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+){0,63}$/;
export const MAX_TRIGGER_SUBJECTS = 16;
export const MAX_TRIGGER_SUBJECT_LENGTH = 256;

/**
 * Why a trigger subject is refused, or undefined when it may be used. Subjects under `skiff.`,
 * `_INBOX` and `$` are the platform's and the server's own; a subject that could match them
 * (a leading `*` or `>`) is refused too, so no trigger ever reads platform traffic.
 */
export function triggerSubjectProblem(subject: string): string | undefined {
  if (subject.length === 0 || subject.length > MAX_TRIGGER_SUBJECT_LENGTH) return `must be 1-${MAX_TRIGGER_SUBJECT_LENGTH} characters`;
  if (!TRIGGER_SUBJECT_PATTERN.test(subject)) return 'must be dot-separated tokens of [A-Za-z0-9_-] or "*", with ">" only as the last token';
  const first = subject.split('.')[0]!;
  if (first === '*' || first === '>') return 'must start with a literal token (a leading wildcard would match skiff.>, _INBOX.> and $-subjects)';
  if (first === 'skiff' || first.startsWith('_INBOX') || first.startsWith('$')) return 'is reserved: skiff.>, _INBOX and $ subjects belong to the platform and nats-server';
  return undefined;
}
