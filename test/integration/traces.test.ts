import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { Platform, freePort, waitUntil } from '@skiff/testkit';

/**
 * Traces as a collector receives them: every service exports OTLP/HTTP (JSON) to a plain HTTP
 * receiver this test starts, and one invoke is followed from the caller's traceparent through
 * the gateway's span and placement to the worker's, with the cold start's parts below it.
 */

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, unknown>;
}

/** OTLP JSON ids are hex; a base64 one (other encoders) is turned into hex. */
const hex = (id: string | undefined, length: number) => (!id ? '' : /^[0-9a-f]+$/.test(id) && id.length === length ? id : Buffer.from(id, 'base64').toString('hex'));

type AnyValue = { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
const valueOf = (v: AnyValue) => v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue);

class Receiver {
  readonly spans: ReceivedSpan[] = [];
  private server: Server | undefined;
  constructor(readonly port: number) {}

  async listen(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const doc = JSON.parse(Buffer.concat(chunks).toString()) as {
            resourceSpans: { resource: { attributes: { key: string; value: AnyValue }[] }; scopeSpans: { spans: { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: { key: string; value: AnyValue }[] }[] }[] }[];
          };
          for (const rs of doc.resourceSpans) {
            const service = String(valueOf(rs.resource.attributes.find((a) => a.key === 'service.name')!.value));
            for (const ss of rs.scopeSpans)
              for (const s of ss.spans)
                this.spans.push({
                  service,
                  traceId: hex(s.traceId, 32),
                  spanId: hex(s.spanId, 16),
                  parentSpanId: hex(s.parentSpanId, 16),
                  name: s.name,
                  attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, valueOf(a.value)])),
                });
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    return this;
  }

  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A node function that answers with the trace it was given (context.trace). */
function nodeFunction(): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-traced-fn-'));
  writeFileSync(join(dir, 'index.mjs'), 'export default async (event, context) => ({ got: event, trace: context.trace });\n');
  return dir;
}

describe('traces of an invocation, received over OTLP/HTTP', () => {
  let p: Platform;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await new Receiver(await freePort()).listen();
    const otel = { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`, OTEL_BSP_SCHEDULE_DELAY: '100' };
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    p.start('scheduler', otel);
    p.start('worker', { SKIFF_NODE_ID: 'node-a', SKIFF_STEM_CELLS: '0', ...otel }, 'worker-node-a');
    await p.startGateway(otel);
    await p.waitForNodes(['node-a']);
  }, 180_000);
  afterAll(async () => {
    await p?.close();
    await receiver?.close();
  });

  /** Invokes with a traceparent of the test's own, and waits for the worker's span of that trace. */
  const tracedInvoke = async (fn: string) => {
    const traceId = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const res = await p.api('POST', `/v1/functions/${fn}/invoke`, '{"n":1}', { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` });
    expect(res.status, await res.clone().text()).toBe(200);
    const answer = await res.clone().text();
    expect(res.headers.get('traceresponse')).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    await waitUntil(async () => receiver.trace(traceId).some((s) => s.service === 'skiff-worker' && s.name === `invoke ${fn}`) && receiver.trace(traceId).some((s) => s.service === 'skiff-gateway' && s.name.startsWith('POST')), `the spans of trace ${traceId}`, 30_000);
    // The last spans of the trace (a cold start's) may come in the worker's next export.
    await new Promise((r) => setTimeout(r, 500));
    return { traceId, callerSpan, answer, spans: receiver.trace(traceId), responseSpan: res.headers.get('traceresponse')!.split('-')[2]! };
  };
  const one = (spans: ReceivedSpan[], service: string, name: string | RegExp) => {
    const found = spans.filter((s) => s.service === service && (typeof name === 'string' ? s.name === name : name.test(s.name)));
    expect(found.map((s) => s.name), `${service} ${String(name)} in ${JSON.stringify(spans.map((s) => `${s.service} ${s.name}`))}`).toHaveLength(1);
    return found[0]!;
  };

  it('follows a cold invoke from the caller through the gateway and placement to the worker, with the start of its instance below', async () => {
    expect((await p.deployNode('traced', nodeFunction())).status).toBe(201);
    const { traceId, callerSpan, answer, spans, responseSpan } = await tracedInvoke('traced');
    const request = one(spans, 'skiff-gateway', 'POST /v1/functions/:name/invoke');
    expect(request.parentSpanId).toBe(callerSpan);
    expect(request.spanId).toBe(responseSpan);
    expect(request.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/v1/functions/:name/invoke', 'http.response.status_code': 200 });
    const place = one(spans, 'skiff-gateway', 'place');
    expect(place.parentSpanId).toBe(request.spanId);
    expect(place.attributes).toMatchObject({ 'faas.name': 'traced', 'skiff.node.id': 'node-a' });
    expect(['warm', 'cached', 'least loaded']).toContain(place.attributes['skiff.placement.reason']);
    const invoke = one(spans, 'skiff-worker', 'invoke traced');
    expect(invoke.parentSpanId).toBe(request.spanId);
    expect(invoke.attributes).toMatchObject({ 'faas.name': 'traced', 'faas.version': '1', 'faas.trigger': 'http', 'faas.coldstart': true, 'skiff.node.id': 'node-a' });
    const start = one(spans, 'skiff-worker', 'instance start');
    expect(start.parentSpanId).toBe(invoke.spanId);
    const wait = one(spans, 'skiff-worker', 'wait for an instance');
    expect(wait.parentSpanId).toBe(invoke.spanId);
    expect(wait.attributes).toMatchObject({ 'faas.name': 'traced', 'skiff.waiting': 0 });
    const image = one(spans, 'skiff-worker', 'image prepare');
    expect(image.parentSpanId).toBe(start.spanId);
    // The function's own spans would join the trace below the worker's invocation span.
    expect(JSON.parse(answer).trace).toEqual({ traceparent: `00-${traceId}-${invoke.spanId}-01`, traceId, parentSpanId: invoke.spanId, sampled: true });
  });

  it('a warm invoke has the invocation span and none of a start or a wait', async () => {
    const { spans } = await tracedInvoke('traced');
    const invoke = one(spans, 'skiff-worker', 'invoke traced');
    expect(invoke.attributes['faas.coldstart']).toBe(false);
    expect(spans.filter((s) => ['instance start', 'image prepare', 'wait for an instance'].includes(s.name))).toEqual([]);
  });

  it('names the trace of an error response too, and starts one for a caller that sent none', async () => {
    const res = await p.api('POST', '/v1/functions/no-such-function/invoke', 'x');
    expect(res.status).toBe(404);
    const [, traceId, spanId] = res.headers.get('traceresponse')!.split('-');
    await waitUntil(async () => receiver.trace(traceId!).length > 0, 'the span of the 404', 30_000);
    expect(receiver.trace(traceId!)).toMatchObject([{ service: 'skiff-gateway', spanId, parentSpanId: '', attributes: { 'http.response.status_code': 404 } }]);
  });

  it('follows an async invocation from its accept through the attempt to the worker', async () => {
    const traceId = randomBytes(16).toString('hex');
    const res = await p.api('POST', '/v1/functions/traced/invoke', '{"n":2}', { 'content-type': 'application/json', prefer: 'respond-async', traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` });
    expect(res.status).toBe(202);
    await waitUntil(async () => ['invoke traced', 'async attempt'].every((name) => receiver.trace(traceId).some((s) => s.name === name)), 'the async invocation\'s attempt and worker spans', 30_000);
    const spans = receiver.trace(traceId);
    const request = one(spans, 'skiff-gateway', 'POST /v1/functions/:name/invoke');
    const attempt = one(spans, 'skiff-scheduler', 'async attempt');
    expect(attempt.parentSpanId).toBe(request.spanId);
    expect(attempt.attributes).toMatchObject({ 'faas.name': 'traced', 'skiff.attempt': 1, 'skiff.node.id': 'node-a' });
    expect(one(spans, 'skiff-worker', 'invoke traced').parentSpanId).toBe(attempt.spanId);
  });

  it("follows a subject trigger's message from its publisher's traceparent through the delivery to the worker", async () => {
    expect((await p.deployNode('traced-trigger', nodeFunction(), { triggers: { subjects: ['traced.orders'] } })).status).toBe(201);
    const events = await p.nats.connect('events');
    try {
      const traceId = randomBytes(16).toString('hex');
      const publisherSpan = randomBytes(8).toString('hex');
      const h = natsHeaders();
      h.set('traceparent', `00-${traceId}-${publisherSpan}-01`);
      // Until the schedulers subscribed to the new subject, a request has no responders.
      await waitUntil(async () => (await events.request('traced.orders', '{}', { headers: h, timeout: 10_000 }).then(() => true, () => false)), 'a reply from the triggered function', 30_000);
      await waitUntil(async () => ['invoke traced-trigger', 'trigger delivery'].every((name) => receiver.trace(traceId).some((s) => s.name === name)), 'the triggered call\'s delivery and worker spans', 30_000);
      const spans = receiver.trace(traceId);
      const delivery = one(spans, 'skiff-scheduler', 'trigger delivery');
      expect(delivery.parentSpanId).toBe(publisherSpan);
      expect(delivery.attributes).toMatchObject({ 'messaging.destination.name': 'traced.orders', 'faas.name': 'traced-trigger' });
      const invoke = one(spans, 'skiff-worker', 'invoke traced-trigger');
      expect(invoke.parentSpanId).toBe(delivery.spanId);
      expect(invoke.attributes['faas.trigger']).toBe('pubsub');
    } finally {
      await events.close();
    }
  });

  it('starts a trace at each scheduled tick: the tick, its attempt, the worker', async () => {
    expect((await p.deployNode('traced-tick', nodeFunction(), { triggers: { schedule: '* * * * * *' } })).status).toBe(201);
    let spans: ReceivedSpan[] = [];
    await waitUntil(async () => {
      const tick = receiver.spans.find((s) => s.name === 'scheduled tick' && s.attributes['faas.name'] === 'traced-tick' && ['invoke traced-tick', 'async attempt'].every((name) => receiver.trace(s.traceId).some((w) => w.name === name)));
      spans = tick ? receiver.trace(tick.traceId) : [];
      return tick !== undefined;
    }, 'a traced tick', 30_000);
    expect((await p.api('DELETE', '/v1/functions/traced-tick')).status).toBe(204);
    const tick = one(spans, 'skiff-scheduler', 'scheduled tick');
    expect(tick.parentSpanId).toBe('');
    const attempt = one(spans, 'skiff-scheduler', 'async attempt');
    expect(attempt.parentSpanId).toBe(tick.spanId);
    const invoke = one(spans, 'skiff-worker', 'invoke traced-tick');
    expect(invoke.parentSpanId).toBe(attempt.spanId);
    expect(invoke.attributes['faas.trigger']).toBe('timer');
  });

  it('an exec invoke runs its container below the invocation span', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-traced-exec-'));
    writeFileSync(join(dir, 'handler.sh'), 'printf %s "$TRACEPARENT"\n');
    expect((await p.deploy('traced-exec', dir, ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
    const { traceId, answer, spans } = await tracedInvoke('traced-exec');
    const invoke = one(spans, 'skiff-worker', 'invoke traced-exec');
    expect(answer).toBe(`00-${traceId}-${invoke.spanId}-01`);
    expect(invoke.attributes['faas.coldstart']).toBe(true);
    expect(one(spans, 'skiff-worker', 'image prepare').parentSpanId).toBe(invoke.spanId);
    expect(one(spans, 'skiff-worker', 'container run').parentSpanId).toBe(invoke.spanId);
  });
});
