import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SETTINGS } from '@skiff/contracts';
import { REPO } from '@skiff/testkit';

describe('openapi/gateway.yaml', () => {
  const doc = parse(readFileSync(join(REPO, 'openapi/gateway.yaml'), 'utf8'));
  const settings = doc.components.schemas.FunctionSettings.properties;

  it.each(Object.entries(SETTINGS))('states the same range and default for %s as the contracts', (name, range) => {
    expect(settings[name]).toMatchObject({ type: range.integer ? 'integer' : 'number', minimum: range.min, maximum: range.max, default: range.default });
  });
});
