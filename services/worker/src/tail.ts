/** Keeps only the last `limit` bytes written to it (a process's last words). */
export class Tail {
  private buf = Buffer.alloc(0);

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length > this.limit) this.buf = this.buf.subarray(this.buf.length - this.limit);
  }

  text(): string {
    return this.buf.toString('utf8').trim();
  }
}
