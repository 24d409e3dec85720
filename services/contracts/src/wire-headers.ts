import { headers as natsHeaders, type Match, type MsgHdrs } from '@nats-io/nats-core';

const encoder = new TextEncoder();

/**
 * NATS headers written in one pass, for messages sent on every invocation. nats.js publishes
 * headers by calling their encode(); its own MsgHdrs scans and copies every key on each set
 * and builds the text by repeated concatenation, which made the headers of one invocation
 * cost more garbage than the rest of the hop. The bytes are the same as nats.js writes for
 * the same headers (a test compares them). Keys are used as given (spell them canonically,
 * as the `H` names are); values are checked as nats.js checks them. Anything but encoding
 * and reading goes to a real MsgHdrs made on first use.
 */
export class WireHeaders implements MsgHdrs {
  private readonly pairs: Array<[string, string]> = [];
  private full: MsgHdrs | undefined;

  /** Adds a header; a value holding CR or LF is refused (it would end the header early). */
  add(key: string, value: string): this {
    if (/[\r\n]/.test(value)) throw new TypeError(`header ${key}: values cannot contain \\r or \\n`);
    if (this.full) this.full.append(key, value);
    else this.pairs.push([key, value.trim()]);
    return this;
  }

  encode(): Uint8Array {
    if (this.full) return (this.full as MsgHdrs & { encode(): Uint8Array }).encode();
    let text = 'NATS/1.0';
    for (const [k, v] of this.pairs) text += `\r\n${k}: ${v}`;
    return encoder.encode(`${text}\r\n\r\n`);
  }

  private real(): MsgHdrs {
    if (!this.full) {
      this.full = natsHeaders();
      for (const [k, v] of this.pairs) this.full.append(k, v);
    }
    return this.full;
  }

  get hasError(): boolean {
    return this.real().hasError;
  }
  get status(): string {
    return this.real().status;
  }
  get code(): number {
    return this.real().code;
  }
  get description(): string {
    return this.real().description;
  }
  get(k: string, match?: Match): string {
    return this.real().get(k, match);
  }
  set(k: string, v: string, match?: Match): void {
    this.real().set(k, v, match);
  }
  append(k: string, v: string, match?: Match): void {
    this.real().append(k, v, match);
  }
  has(k: string, match?: Match): boolean {
    return this.real().has(k, match);
  }
  keys(): string[] {
    return this.real().keys();
  }
  values(k: string, match?: Match): string[] {
    return this.real().values(k, match);
  }
  delete(k: string, match?: Match): void {
    this.real().delete(k, match);
  }
  last(k: string, match?: Match): string {
    return this.real().last(k, match);
  }
  [Symbol.iterator](): Iterator<[string, string[]]> {
    return this.real()[Symbol.iterator]();
  }
}
