import { appendFile } from 'node:fs';
import { Writable } from 'node:stream';

/**
 * A stream that appends each chunk to the file at `path`, opened anew each time: a service
 * that rotates its own log (SKIFF_LOG_FILE) renames the file under it, and what it prints
 * outside its logger (a crash trace) must land in the current file, not the rotated one.
 */
export function appendingTo(path: string): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      appendFile(path, chunk, { mode: 0o600 }, done);
    },
  });
}
