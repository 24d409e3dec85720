import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CATALOG } from '@skiff/contracts';
import { REPO } from '@skiff/testkit';

describe('docs/errors.md', () => {
  const doc = readFileSync(join(REPO, 'docs/errors.md'), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `(SKIFF_[A-Z_]+)` \| (\d{3}) \| (yes|no) \|/gm)].map((m) => [m[1], { status: Number(m[2]), retryable: m[3] === 'yes' }]),
  );

  it.each(Object.entries(ERROR_CATALOG))('documents %s with its status and retryability', (code, entry) => {
    expect(rows.get(code), `${code} is missing from docs/errors.md`).toEqual({ status: entry.status, retryable: entry.retryable });
  });

  it('documents no code that does not exist', () => {
    for (const code of rows.keys()) expect(Object.keys(ERROR_CATALOG)).toContain(code);
  });
});
