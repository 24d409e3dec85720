/** Keeps only the last `limit` bytes written to it (a process's last words), never more. */
export class Tail {
  private buf = Buffer.alloc(0);

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    // Only the end of a large chunk can be kept; copied, so the chunk itself is not.
    const end = chunk.length > this.limit ? chunk.subarray(chunk.length - this.limit) : chunk;
    const joined = Buffer.concat([this.buf, end]);
    this.buf = joined.length > this.limit ? Buffer.from(joined.subarray(joined.length - this.limit)) : joined;
  }

  text(): string {
    return this.buf.toString('utf8').trim();
  }
}
