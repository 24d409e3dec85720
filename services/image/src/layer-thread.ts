/*
 * Entry point of a layer thread (see layer-threads.ts). A thread applies one layer at a time
 * with synchronous fs calls, which is cheap here and blocks no one else's event loop.
 */
import { parentPort } from 'node:worker_threads';
import { SkiffError } from '@skiff/contracts/errors';
import { toSkiffError } from './errors.js';
import { applyLayerJob } from './layer-job.js';
import type { JobReply, JobRequest } from './layer-threads.js';

/** Progress is reported per this many uncompressed bytes. */
const REPORT_EVERY = 4 * 1024 * 1024;

const port = parentPort;
if (!port) throw new SkiffError('SKIFF_INTERNAL', 'layer-thread.js must run as a worker thread');

port.on('message', (msg: JobRequest) => {
  const post = (reply: JobReply): void => port.postMessage(reply);
  let bytes = 0;
  let reported = 0;
  const onBytes = (n: number): void => {
    bytes += n;
    if (bytes - reported >= REPORT_EVERY) {
      reported = bytes;
      post({ type: 'progress', bytes });
    }
  };
  applyLayerJob(msg.job, onBytes).then(
    (result) => post({ type: 'done', result }),
    (err: unknown) => {
      const e = toSkiffError(err, `layer ${msg.job.index} ${msg.job.desc.digest}`);
      post({ type: 'error', code: e.code, message: e.message });
    },
  );
});
