import { appendFile } from 'node:fs';
import { Writable } from 'node:stream';
import { RotatingLogFile, type LogFileOptions } from '@skiff/service-kit';

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

/** The longest part of a line held back waiting for its end; more is written as it is. */
const MAX_PARTIAL_LINE = 64 * 1024;

/**
 * A stream that writes whole lines into a log file rotated by size, as the services rotate their
 * own (RotatingLogFile: path.1 the newest to path.<keep>), for a program that only prints: the
 * nats-server `skiff up` runs. A line is never split between two files unless it is longer than
 * MAX_PARTIAL_LINE.
 */
export function rotatingLines(options: LogFileOptions): Writable {
  const file = new RotatingLogFile(options);
  let partial = '';
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = partial + chunk.toString('utf8');
      let start = 0;
      // Line by line: a chunk of many lines must still rotate between them, at the size limit.
      for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
        file.write(text.slice(start, end + 1));
        start = end + 1;
      }
      partial = text.slice(start);
      if (partial.length > MAX_PARTIAL_LINE) {
        file.write(partial);
        partial = '';
      }
      done();
    },
    final(done) {
      if (partial) file.write(partial);
      file.close();
      done();
    },
  });
}
