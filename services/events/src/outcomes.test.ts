import { headers as natsHeaders } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { OUTCOME_H, destinationOf, outcomeEvent, outcomeEventId } from './outcomes.js';
import type { InvocationRecord } from './records.js';

const record: InvocationRecord = {
  id: 'echo.0123456789abcdef0123456789abcdef',
  fn: 'echo',
  fnVersion: 2,
  status: 'succeeded',
  acceptedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:01.000Z',
  attempts: [{ attempt: 1, startedAt: '2026-01-01T00:00:00.500Z', endedAt: '2026-01-01T00:00:01.000Z', nodeId: 'node-a' }],
  result: { bytes: 2, body: 'aGk=' },
};

describe('outcome events', () => {
  it('are CloudEvents 1.0 with the record as data, the invocation as subject and the function as source', () => {
    expect(outcomeEvent(record)).toEqual({
      specversion: '1.0',
      id: outcomeEventId(record),
      source: '/v1/functions/echo',
      type: 'dev.skiff.invocation.succeeded',
      subject: record.id,
      time: record.updatedAt,
      datacontenttype: 'application/json',
      data: record,
    });
    expect(outcomeEvent({ ...record, status: 'dead' }).type).toBe('dev.skiff.invocation.dead');
  });

  it('have one id per outcome: the same when emitted again, another for a later outcome of the same invocation', () => {
    expect(outcomeEventId(structuredClone(record))).toBe(outcomeEventId(record));
    expect(outcomeEventId({ ...record, status: 'dead' })).not.toBe(outcomeEventId(record));
    expect(outcomeEventId({ ...record, updatedAt: '2026-01-02T00:00:00.000Z' })).not.toBe(outcomeEventId(record));
    expect(outcomeEventId(record)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('are not made for an invocation without an outcome', () => {
    expect(() => outcomeEvent({ ...record, status: 'running' })).toThrow(/not at an outcome/);
  });

  it("take their destination from the outbox header only when the API's rules allow it", () => {
    const h = (v: string) => {
      const headers = natsHeaders();
      headers.set(OUTCOME_H.destination, v);
      return headers;
    };
    expect(destinationOf('url', h('https://example.com/hook'))).toBe('https://example.com/hook');
    expect(destinationOf('subject', h('orders.done'))).toBe('orders.done');
    expect(() => destinationOf('url', h('file:///etc/passwd'))).toThrow(/http/);
    expect(() => destinationOf('subject', h('skiff.invoke'))).toThrow(/reserved/);
    expect(() => destinationOf('subject', undefined)).toThrow(/characters/);
  });
});
