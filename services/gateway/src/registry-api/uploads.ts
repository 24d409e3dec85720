import type { ImageStore } from '@skiff/image';
import { BlobWriter } from './blob-writer.js';

export interface UploadSession {
  readonly id: string;
  /** Repository the upload was started for; later requests must name the same one. */
  readonly name: string;
  readonly writer: BlobWriter;
  lastActivity: number;
  /** A PATCH or PUT is running; a second request at the same time is refused. */
  busy: boolean;
}

/**
 * Blob upload sessions of this gateway (uploads are sticky: a session lives in the process
 * that started it). Sessions idle for longer than `idleMs` are dropped with their files by a
 * periodic sweep; close() drops all of them.
 */
export class UploadManager {
  private readonly sessions = new Map<string, UploadSession>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: ImageStore,
    readonly maxBlobBytes: number,
    readonly idleMs: number,
    readonly maxSessions = 1024,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => void this.sweep(), Math.max(250, Math.min(idleMs / 2, 60_000)));
    this.timer.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Undefined when too many uploads are open. */
  async start(name: string): Promise<UploadSession | undefined> {
    if (this.sessions.size >= this.maxSessions) {
      await this.sweep();
      if (this.sessions.size >= this.maxSessions) return undefined;
    }
    const writer = await BlobWriter.create(this.store, this.maxBlobBytes);
    const session: UploadSession = { id: writer.id, name, writer, lastActivity: this.now(), busy: false };
    this.sessions.set(writer.id, session);
    return session;
  }

  /** Looking a session up is not activity: only writes (see the plugin's exclusive()) keep it alive. */
  get(id: string): UploadSession | undefined {
    return this.sessions.get(id);
  }

  /** Forgets the session and removes its temporary file (if it was not moved into the store). */
  async drop(id: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    await s.writer.discard();
  }

  /** Drops sessions idle for idleMs or more. */
  async sweep(): Promise<number> {
    const cutoff = this.now() - this.idleMs;
    const stale = [...this.sessions.values()].filter((s) => !s.busy && s.lastActivity <= cutoff);
    await Promise.all(stale.map((s) => this.drop(s.id)));
    return stale.length;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.sessions.keys()].map((id) => this.drop(id)));
  }
}
