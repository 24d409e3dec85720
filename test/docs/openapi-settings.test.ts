import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { MAX_TIMEOUT_MS, SETTINGS } from '@skiff/contracts';
import { REPO } from '@skiff/testkit';

describe('openapi/gateway.yaml', () => {
  const doc = parse(readFileSync(join(REPO, 'openapi/gateway.yaml'), 'utf8'));
  const settings = doc.components.schemas.FunctionSettings.properties;

  it.each(Object.entries(SETTINGS))('states the same range and default for %s as the contracts', (name, range) => {
    expect(settings[name]).toMatchObject({ type: range.integer ? 'integer' : 'number', minimum: range.min, maximum: range.max, default: range.default });
  });

  it('states the longest timeoutMs the contracts allow (the NATS response window is sized by it)', () => {
    expect(settings.timeoutMs).toMatchObject({ type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS });
  });
});
