import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO } from '@skiff/testkit';

/** Source and text files below `dir`, without installed or built output. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return ['node_modules', 'dist', 'build'].includes(e.name) ? [] : sources(path);
    return /\.(ts|mjs|js|c|h|md|sh|ya?ml|json)$/.test(e.name) && !e.name.endsWith('.tsbuildinfo') ? [path] : [];
  });
}

/** Every "docs/security.md #N" (or "#N, #M and #K", or the link docs/security.md#N) in `text`, with its line. */
function citations(text: string): { item: number; line: number }[] {
  const found: { item: number; line: number }[] = [];
  for (const m of text.matchAll(/docs\/security\.md((?:(?:,\s*|\s+and\s+|\s*)#\d+)+)/g)) {
    const line = text.slice(0, m.index).split('\n').length;
    for (const n of m[1]!.matchAll(/#(\d+)/g)) found.push({ item: Number(n[1]), line });
  }
  return found;
}

describe('docs/security.md', () => {
  const doc = readFileSync(join(REPO, 'docs/security.md'), 'utf8');
  const anchored = [...doc.matchAll(/^<a id="(\d+)"><\/a>\n### (\d+)\. /gm)];
  const items = new Set(anchored.map((m) => Number(m[1])));
  const files = [...['test', 'services', 'docs'].flatMap((d) => sources(join(REPO, d))), join(REPO, 'README.md'), join(REPO, 'DEVELOPERS.md')];

  it('gives every item an anchor of its own number, right above its heading', () => {
    expect(anchored.length).toBeGreaterThan(0);
    for (const [, id, heading] of anchored) expect(heading, `anchor ${id}`).toBe(id);
    expect([...doc.matchAll(/<a id="/g)]).toHaveLength(anchored.length);
    expect(items.size).toBe(anchored.length);
  });

  it('has every item that a file under test/, services/ or docs/ cites', () => {
    const unknown = files.flatMap((f) =>
      citations(readFileSync(f, 'utf8'))
        .filter((c) => !items.has(c.item))
        .map((c) => `${relative(REPO, f)}:${c.line} cites #${c.item}`),
    );
    expect(unknown).toEqual([]);
  });

  it('is cited instead of the numbered list that is not in the repository', () => {
    const stale = files.filter((f) => /\bSECURITY(\.md\b| items? \d)/.test(readFileSync(f, 'utf8')));
    expect(stale.map((f) => relative(REPO, f))).toEqual([]);
  });

  it('reads citations the way they are written', () => {
    const page = 'docs/security.md'; // spelled apart, so these samples are no citations of this file
    expect(citations(`see ${page} #14`)).toEqual([{ item: 14, line: 1 }]);
    expect(citations(`x\n// ${page} #11, #12 and #13: cwd`).map((c) => c.item)).toEqual([11, 12, 13]);
    expect(citations(`the link ${page}#14`)).toEqual([{ item: 14, line: 1 }]);
    expect(citations(`${page} alone names no item`)).toEqual([]);
  });
});
