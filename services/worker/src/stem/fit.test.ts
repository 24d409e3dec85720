import { describe, expect, it } from 'vitest';
import type { ImageConfig } from '@skiff/image';
import { stemMisfit, type LayerTop } from './fit.js';

const ARGS = ['/usr/local/bin/node', '/runtime/runtime.mjs'];
const stem: ImageConfig = { architecture: 'amd64', os: 'linux', config: { Entrypoint: ARGS, Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: ['sha256:a', 'sha256:b'] } };
const fn = (over: Partial<ImageConfig['config']> = {}, layers = ['sha256:a', 'sha256:b', 'sha256:f']): ImageConfig => ({
  ...stem,
  config: { Entrypoint: ARGS, Env: ['PATH=/bin', 'SKIFF_HANDLER=/function/index.mjs'], WorkingDir: '/function', ...over },
  rootfs: { type: 'layers', diff_ids: layers },
});
const top = (entries: LayerTop['entries'], marks: Partial<LayerTop> = {}): LayerTop => ({ diffId: 'sha256:f', entries, whiteouts: [], opaques: [], ...marks });
const own = top([{ name: 'function', directory: true }], { opaques: ['function'], whiteouts: ['function/old.js'] });
const stemEnv = ['PATH=/bin', 'SKIFF_STEM=1'];
const fnEnv = ['PATH=/bin', 'SKIFF_HANDLER=/function/index.mjs', 'SKIFF_FUNCTION=f', 'MY_SETTING=1'];

describe('stemMisfit', () => {
  it('fits the stem image plus a layer of its own under /function, with other variables than Node reads at start', () => {
    expect(stemMisfit(stem, stemEnv, fn(), fnEnv, [own])).toBeUndefined();
  });

  it('refuses an image that is not the stem image plus its own layers', () => {
    expect(stemMisfit(stem, stemEnv, fn({}, ['sha256:a', 'sha256:x', 'sha256:f']), fnEnv, [own])).toMatch(/not the stem image/);
    expect(stemMisfit(stem, stemEnv, fn({}, ['sha256:a', 'sha256:b']), fnEnv, [])).toMatch(/not the stem image/);
    expect(stemMisfit(stem, stemEnv, fn(), fnEnv, [])).toMatch(/not all known/);
  });

  it('refuses layers that add or remove anything outside /function: the stem cell would run other bytes', () => {
    expect(stemMisfit(stem, stemEnv, fn(), fnEnv, [top([{ name: 'function', directory: true }, { name: 'runtime', directory: true }])])).toMatch(/adds outside/);
    expect(stemMisfit(stem, stemEnv, fn(), fnEnv, [top([{ name: 'function', directory: false }])])).toMatch(/adds outside/);
    expect(stemMisfit(stem, stemEnv, fn(), fnEnv, [top([{ name: 'function', directory: true }], { whiteouts: ['runtime/runtime.mjs'] })])).toMatch(/removes outside/);
    expect(stemMisfit(stem, stemEnv, fn(), fnEnv, [top([{ name: 'function', directory: true }], { opaques: [''] })])).toMatch(/removes outside/);
  });

  it('refuses another process or user', () => {
    expect(stemMisfit(stem, stemEnv, fn({ Entrypoint: ['/usr/local/bin/node', '/function/main.mjs'] }), fnEnv, [own])).toMatch(/runs/);
    expect(stemMisfit(stem, stemEnv, fn({ Cmd: ['--inspect'] }), fnEnv, [own])).toMatch(/runs/);
    expect(stemMisfit(stem, stemEnv, fn({ User: '1000' }), fnEnv, [own])).toMatch(/another user/);
  });

  it('refuses a variable Node.js reads as it starts with another value than the stem cell had', () => {
    expect(stemMisfit(stem, stemEnv, fn(), [...fnEnv, 'NODE_OPTIONS=--max-old-space-size=64'], [own])).toMatch(/NODE_OPTIONS/);
    expect(stemMisfit(stem, stemEnv, fn(), [...fnEnv, 'TZ=Europe/Paris'], [own])).toMatch(/TZ/);
    expect(stemMisfit(stem, stemEnv, fn(), [...fnEnv, 'UV_THREADPOOL_SIZE=8'], [own])).toMatch(/UV_THREADPOOL_SIZE/);
    expect(stemMisfit(stem, [...stemEnv, 'LANG=C.UTF-8'], fn(), fnEnv, [own])).toMatch(/LANG/);
  });
});
