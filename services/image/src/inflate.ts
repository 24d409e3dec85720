import { constants, createGunzip, type Gunzip } from 'node:zlib';
import { SkiffError } from '@skiff/contracts/errors';
import { invalid } from './errors.js';

/**
 * The parts of Node's zlib handle this uses. Node's own synchronous zlib calls
 * (gunzipSync, and npm's minizlib) drive the handle the same way; the public stream API
 * allocates a fresh output buffer for every chunk, and on this kind of VM fresh memory costs a
 * page fault per 4 KiB, which made inflating the node base layer take twice as long.
 */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number) => void;
}

interface GunzipInternals {
  _handle?: Partial<ZlibHandle> | null;
  /** [output bytes left, input bytes left] after each write. */
  _writeState?: Uint32Array;
}

/**
 * A gunzip driven synchronously on the calling thread, inflating into one output buffer that
 * is reused for the whole stream: each piece of output is handed to `sink` and must be
 * consumed (hashed, written) before `sink` returns. Concatenated gzip members are read on,
 * as `gunzip` does; trailing zero padding is ignored; anything else is an error.
 */
export class Inflater {
  private readonly stream: Gunzip;
  private readonly handle: ZlibHandle;
  private readonly state: Uint32Array;
  private readonly out: Buffer;
  private failure: string | undefined;

  constructor(
    private readonly label: string,
    outSize: number,
    private readonly sink: (out: Buffer) => void,
  ) {
    this.stream = createGunzip();
    const { _handle: handle, _writeState: state } = this.stream as unknown as GunzipInternals;
    if (typeof handle?.writeSync !== 'function' || !(state instanceof Uint32Array)) {
      this.stream.close();
      throw new SkiffError('SKIFF_INTERNAL', `this Node.js (${process.version}) has no synchronous zlib handle; the layer inflater needs one`);
    }
    // Errors come back from writeSync through this callback, synchronously.
    handle.onerror = (message: string) => {
      this.failure = message;
    };
    this.handle = handle as ZlibHandle;
    this.state = state;
    this.out = Buffer.allocUnsafe(outSize);
  }

  /** Inflates `input`; every byte of output reaches the sink before this returns. */
  write(input: Buffer): void {
    this.run(constants.Z_NO_FLUSH, input);
  }

  /** The compressed stream is over: flushes the rest and fails if the gzip stream was cut short. */
  end(): void {
    this.run(constants.Z_FINISH, Buffer.alloc(0));
  }

  /** Frees zlib's memory; call once done, whether or not the stream ended well. */
  close(): void {
    this.stream.close();
  }

  private run(flush: number, input: Buffer): void {
    let offset = 0;
    let left = input.length;
    for (;;) {
      this.handle.writeSync(flush, input, offset, left, this.out, 0, this.out.length);
      if (this.failure !== undefined) throw invalid(`${this.label}: gzip data is corrupt (${this.failure})`);
      const outLeft = this.state[0] as number;
      const inLeft = this.state[1] as number;
      const produced = this.out.length - outLeft;
      if (produced > 0) this.sink(this.out.subarray(0, produced));
      offset += left - inLeft;
      left = inLeft;
      // A full output buffer means there may be more; otherwise the input was used up (or
      // the stream ended and what is left is zero padding, which zlib leaves unread).
      if (outLeft > 0) return;
    }
  }
}
