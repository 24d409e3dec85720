import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, type Logger, type NatsAuth } from '@skiff/service-kit';

/**
 * The gateway's NATS connection. It reconnects forever, and `connected` says whether it is up
 * right now, so requests can be refused with 503 during an outage instead of piling up in the
 * client's reconnect buffer; `onLost` listeners hear each loss, to fail what waits on NATS.
 */
export class Messaging {
  connected = true;
  private readonly lostListeners: (() => void)[] = [];

  private constructor(readonly nc: NatsConnection) {}

  static async connect(url: string, auth: NatsAuth, log: Logger): Promise<Messaging> {
    const nc = await connectNats({ url, name: 'skiff-gateway', auth });
    const m = new Messaging(nc);
    void m.watch(log);
    return m;
  }

  /** Calls `listener` each time the connection goes down. */
  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  private async watch(log: Logger): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnecting') {
        if (!this.connected) continue;
        log.warn({ nats: s.type }, 'lost NATS connection');
        this.connected = false;
        for (const l of this.lostListeners) {
          try {
            l();
          } catch (err) {
            log.warn({ err }, 'a NATS loss listener failed');
          }
        }
      } else if (s.type === 'reconnect') {
        this.connected = true;
        log.info('NATS connection restored');
      }
    }
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain();
  }
}
