import { describe, expect, it } from 'vitest';
import type { FunctionRecord } from './registry.js';
import { InputSchemas, compileUserSchema } from './schemas.js';

const fn = (inputSchema: object | undefined, version = 1) => ({ name: 'f', version, inputSchema }) as FunctionRecord;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const codeOf = (f: () => void) => {
  try {
    f();
    return 'passed';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
};

describe('user schemas', () => {
  it('gives each schema a namespace of its own, so the same $id compiles again', () => {
    const schema = { $id: 'https://example.com/input', type: 'object', required: ['a'] };
    compileUserSchema(schema, 'body.inputSchema');
    expect(compileUserSchema({ ...schema }, 'body.inputSchema')({ a: 1 })).toBe(true);
  });

  it('matches patterns in linear time and refuses what RE2 cannot run, naming the field', () => {
    // Lookahead and backreferences exist only in backtracking engines: refused means RE2 runs.
    expect(() => compileUserSchema({ type: 'string', pattern: '^(?=a)' }, 'body.inputSchema')).toThrow(/body\.inputSchema/);
    const validate = compileUserSchema({ type: 'string', pattern: '^(a+)+$' }, 'body.inputSchema');
    // With backtracking this input takes longer than the test run; RE2 answers at once.
    expect(validate(`${'a'.repeat(5000)}!`)).toBe(false);
    expect(validate('aaa')).toBe(true);
    expect(compileUserSchema({ type: 'string', pattern: 'b' }, 'x')('abc')).toBe(true);
    expect(() => compileUserSchema({ type: 'string', pattern: '(a)\\1' }, 'body.inputSchema')).toThrow(/body\.inputSchema/);
    const props = compileUserSchema({ type: 'object', patternProperties: { '^(x+)+$': { type: 'number' } } }, 'x');
    expect(props({ [`${'x'.repeat(5000)}!`]: 'not checked', xx: 1 })).toBe(true);
    expect(props({ xx: 'no' })).toBe(false);
  });

  it('checks the limits before compiling', () => {
    expect(codeOf(() => compileUserSchema({ enum: Array.from({ length: 100_000 }, (_, i) => i) }, 'x'))).toBe('SKIFF_SCHEMA_TOO_COMPLEX');
    expect(codeOf(() => compileUserSchema({ type: 'no-such-type' }, 'x'))).toBe('SKIFF_VALIDATION_FAILED');
  });

  it('takes JSON only for a function with an input schema', () => {
    const schemas = new InputSchemas();
    const f = fn({ type: 'object', required: ['name'] });
    expect(codeOf(() => schemas.check(f, 'application/json', json({ name: 'x' })))).toBe('passed');
    expect(codeOf(() => schemas.check(f, 'application/problem+json; charset=utf-8', json({ name: 'x' })))).toBe('passed');
    for (const type of ['text/plain', '*/*', 'application/octet-stream', undefined]) {
      expect(codeOf(() => schemas.check(f, type, json({})))).toBe('SKIFF_UNSUPPORTED_MEDIA_TYPE');
    }
    expect(codeOf(() => schemas.check(fn(undefined), 'text/plain', Buffer.from('hi')))).toBe('passed');
  });

  it('compiles a new version of a function instead of reusing the old one', () => {
    const schemas = new InputSchemas();
    expect(codeOf(() => schemas.check(fn({ type: 'object' }, 1), 'application/json', json({})))).toBe('passed');
    expect(codeOf(() => schemas.check(fn({ type: 'object', required: ['a'] }, 2), 'application/json', json({})))).toBe('SKIFF_VALIDATION_FAILED');
  });

  it('refuses invokes of a version whose stored schema is over today\'s limits, naming the function', () => {
    const schemas = new InputSchemas();
    const old = fn({ enum: Array.from({ length: 5000 }, (_, i) => i) }, 3);
    expect(() => schemas.check(old, 'application/json', json(1))).toThrow(/function "f" version 3 has an input schema this gateway refuses/);
    expect(codeOf(() => schemas.check(old, 'application/json', json(1)))).toBe('SKIFF_SCHEMA_TOO_COMPLEX');
  });
});
