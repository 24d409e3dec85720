import { describe, expect, it } from 'vitest';
import { SkiffError } from '@skiff/contracts';
import { SCHEMA_LIMITS, checkSchemaLimits } from './schema-limits.js';

/** The SkiffError a check throws, or undefined when it passes. */
const refusal = (schema: unknown): SkiffError | undefined => {
  try {
    checkSchemaLimits(schema, 'body.inputSchema');
    return undefined;
  } catch (err) {
    return err as SkiffError;
  }
};

const nested = (levels: number) => {
  let s: object = { type: 'string' };
  for (let i = 1; i < levels; i++) s = { not: s };
  return s;
};

describe('schema limits', () => {
  it('accepts a schema at every limit', () => {
    expect(refusal({ enum: Array.from({ length: SCHEMA_LIMITS.maxEnumValues }, (_, i) => i) })).toBeUndefined();
    expect(refusal(nested(SCHEMA_LIMITS.maxDepth))).toBeUndefined();
    expect(refusal({ type: 'string', pattern: 'a'.repeat(SCHEMA_LIMITS.maxPatternLength) })).toBeUndefined();
    expect(refusal({ type: 'array', items: { type: 'string' }, uniqueItems: true })).toBeUndefined();
  });

  it('refuses an enum over the limit, naming the field and the limit', () => {
    const err = refusal({ properties: { n: { enum: Array.from({ length: SCHEMA_LIMITS.maxEnumValues + 1 }, (_, i) => i) } } });
    expect(err).toMatchObject({ code: 'SKIFF_SCHEMA_TOO_COMPLEX', status: 400 });
    expect(err!.errors).toEqual([{ field: 'body.inputSchema.properties.n.enum', message: `has ${SCHEMA_LIMITS.maxEnumValues + 1} values; the limit maxEnumValues is ${SCHEMA_LIMITS.maxEnumValues}` }]);
  });

  it('refuses nesting over the limit, however deep, without recursing', () => {
    expect(refusal(nested(SCHEMA_LIMITS.maxDepth + 1))?.message).toMatch(/maxDepth is 32/);
    // Deep enough to overflow the stack of a recursive walk (or of JSON.stringify).
    let deep: unknown = 0;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(refusal(deep)).toMatchObject({ code: 'SKIFF_SCHEMA_TOO_COMPLEX' });
  });

  it('refuses more keywords and properties in all than the limit', () => {
    const properties = Object.fromEntries(Array.from({ length: SCHEMA_LIMITS.maxNodes }, (_, i) => [`p${i}`, {}]));
    expect(refusal({ type: 'object', properties })?.message).toMatch(/maxNodes is 2000/);
  });

  it('refuses a schema over the byte limit', () => {
    const big = { description: 'x'.repeat(SCHEMA_LIMITS.maxBytes) };
    expect(refusal(big)?.message).toMatch(/^body\.inputSchema: is \d+ bytes of JSON; the limit maxBytes is 65536$/);
  });

  it('refuses a pattern or a patternProperties key over the length limit', () => {
    const long = 'a'.repeat(SCHEMA_LIMITS.maxPatternLength + 1);
    expect(refusal({ pattern: long })?.message).toMatch(/body\.inputSchema\.pattern: .*maxPatternLength/);
    expect(refusal({ patternProperties: { [long]: {} } })?.message).toMatch(/body\.inputSchema\.patternProperties: .*maxPatternLength/);
  });

  it('refuses uniqueItems over items that would be compared pair by pair', () => {
    expect(refusal({ type: 'array', uniqueItems: true })?.message).toMatch(/uniqueItems needs items with a scalar type/);
    expect(refusal({ type: 'array', items: { type: 'object' }, uniqueItems: true })).toMatchObject({ code: 'SKIFF_SCHEMA_TOO_COMPLEX' });
    expect(refusal({ type: 'array', items: { type: ['string', 'array'] }, uniqueItems: true })).toMatchObject({ code: 'SKIFF_SCHEMA_TOO_COMPLEX' });
  });
});
