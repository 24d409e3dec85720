import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { LIMIT_RANGES } from '@skiff/contracts';
import { REPO } from '@skiff/testkit';

describe('openapi/gateway.yaml', () => {
  const doc = parse(readFileSync(join(REPO, 'openapi/gateway.yaml'), 'utf8'));
  const settings = doc.components.schemas.FunctionSettings.properties;

  it.each(Object.entries(LIMIT_RANGES))('states the same range and default for %s as the contracts', (name, range) => {
    expect(settings[name]).toMatchObject({ minimum: range.min, maximum: range.max, default: range.default });
  });
});
