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
  /** anyone → one scheduler: the current node table. */
  nodesList: 'skiff.nodes.list',
  /** gateway → one worker: an invocation placed on that node. */
  nodeInvoke: (nodeId: string) => `skiff.node.${nodeId}.invoke`,
  /** gateway → one worker: start a stream function version's minInstances there (invocation headers, no body). */
  nodeWarm: (nodeId: string) => `skiff.node.${nodeId}.warm`,
} as const;

export const QUEUE_GROUPS = {
  schedulers: 'skiff-schedulers',
} as const;

/** Call ids travel in headers and name files, so they start with a letter or digit (never ".."). */
export const CALL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Node ids become subject tokens, so they are restricted to characters safe there. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Function names, as the API accepts them (openapi/gateway.yaml, FunctionName). Every message
 * that names a function is checked against it on receipt: a name also becomes a cgroup path,
 * a uid range's key and a file name on the worker, so nothing else may get that far.
 */
export const FUNCTION_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
