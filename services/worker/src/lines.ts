/**
 * Splits a function's stdout or stderr into log lines, keeping at most `maxLineBytes` of a line
 * (docs/security.md #28): the rest of a longer line is counted, not kept, and the line ends with
 * a marker saying how much was cut. A function that never writes a newline costs the worker
 * `maxLineBytes`, however much it writes.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private kept = 0;
  private cut = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly each: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      this.keep(chunk.subarray(start, nl < 0 ? chunk.length : nl));
      if (nl < 0) return;
      this.flush();
      start = nl + 1;
    }
  }

  /** The stream ended: a last line without a newline is a line too. */
  end(): void {
    this.flush();
  }

  private keep(piece: Buffer): void {
    const room = this.maxLineBytes - this.kept;
    const taken = Math.min(room, piece.length);
    // A copy: a view would keep the whole chunk it came from alive.
    if (taken > 0) this.parts.push(Buffer.from(piece.subarray(0, taken)));
    this.kept += taken;
    this.cut += piece.length - taken;
  }

  private flush(): void {
    if (this.kept === 0 && this.cut === 0) return;
    let line = Buffer.concat(this.parts, this.kept).toString('utf8');
    if (this.cut > 0) line += ` ${cutMarker(this.cut)}`;
    this.parts = [];
    this.kept = 0;
    this.cut = 0;
    this.each(line);
  }
}

/** What ends a line the worker cut. */
export function cutMarker(bytes: number): string {
  return `[cut: ${bytes} more bytes]`;
}

/** Forwards the lines of `stream` to `each`, each cut at `maxLineBytes`. */
export function forwardLines(stream: NodeJS.ReadableStream, maxLineBytes: number, each: (line: string) => void): void {
  const lines = new LineSplitter(maxLineBytes, each);
  stream.on('data', (chunk: Buffer) => lines.push(chunk));
  stream.on('end', () => lines.end());
}
