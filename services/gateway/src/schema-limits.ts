import { SkiffError } from '@skiff/contracts';

/**
 * What a user's JSON Schema may contain. The compiler's cost grows with the schema (faster than
 * linearly for enums), so these bounds are what keeps a deploy from holding the event loop; the
 * numbers behind them are in docs/decisions.md ("User JSON Schemas: bounded, each on its own").
 */
export const SCHEMA_LIMITS = Object.freeze({
  /** The schema serialized as JSON. */
  maxBytes: 64 * 1024,
  /** Nesting of objects and arrays, the schema itself being level 1. */
  maxDepth: 32,
  /** Values of one `enum`. */
  maxEnumValues: 1000,
  /** Object members and array items in the whole schema: keywords, properties, enum values… */
  maxNodes: 2000,
  /** Characters of one regular expression (`pattern`, a `patternProperties` key). */
  maxPatternLength: 1024,
});

type Limit = keyof typeof SCHEMA_LIMITS;

function tooMuch(field: string, limit: Limit, what: string): SkiffError {
  const message = `${what}; the limit ${limit} is ${SCHEMA_LIMITS[limit]}`;
  return new SkiffError('SKIFF_SCHEMA_TOO_COMPLEX', `${field}: ${message}`, { errors: [{ field, message }] });
}

/** Throws SKIFF_SCHEMA_TOO_COMPLEX, naming the field and the limit, for a schema over any bound. */
export function checkSchemaLimits(schema: unknown, field: string): void {
  let nodes = 0;
  // Depth-first with an explicit stack: the depth check itself must not recurse without bound.
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: schema, path: field, depth: 1 }];
  while (stack.length) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > SCHEMA_LIMITS.maxDepth) throw tooMuch(path, 'maxDepth', `nests deeper than ${SCHEMA_LIMITS.maxDepth} levels`);
    const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    nodes += entries.length;
    if (nodes > SCHEMA_LIMITS.maxNodes) throw tooMuch(field, 'maxNodes', `has more than ${SCHEMA_LIMITS.maxNodes} keywords, properties and values`);
    if (!Array.isArray(value)) checkKeywords(value as Record<string, unknown>, path);
    for (const [key, child] of entries) stack.push({ value: child, path: `${path}.${key}`, depth: depth + 1 });
  }
  // Measured after the walk: JSON.stringify recurses, so the depth must be known to be small first.
  const bytes = Buffer.byteLength(JSON.stringify(schema) ?? '');
  if (bytes > SCHEMA_LIMITS.maxBytes) throw tooMuch(field, 'maxBytes', `is ${bytes} bytes of JSON`);
}

const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);

/** Ajv checks uniqueItems with a hash for scalar items, but compares every pair otherwise. */
function scalarItems(items: unknown): boolean {
  const type = typeof items === 'object' && items !== null ? (items as { type?: unknown }).type : undefined;
  const types = Array.isArray(type) ? type : [type];
  return types.length > 0 && types.every((t) => typeof t === 'string' && SCALAR_TYPES.has(t));
}

function checkKeywords(node: Record<string, unknown>, path: string): void {
  const { enum: values, pattern, patternProperties, uniqueItems, items } = node;
  if (uniqueItems === true && !scalarItems(items)) {
    const message = 'uniqueItems needs items with a scalar type (string, number, integer, boolean or null): other items are compared pair by pair, at a cost growing with the square of their number';
    throw new SkiffError('SKIFF_SCHEMA_TOO_COMPLEX', `${path}.uniqueItems: ${message}`, { errors: [{ field: `${path}.uniqueItems`, message }] });
  }
  if (Array.isArray(values) && values.length > SCHEMA_LIMITS.maxEnumValues) {
    throw tooMuch(`${path}.enum`, 'maxEnumValues', `has ${values.length} values`);
  }
  if (typeof pattern === 'string' && pattern.length > SCHEMA_LIMITS.maxPatternLength) {
    throw tooMuch(`${path}.pattern`, 'maxPatternLength', `is ${pattern.length} characters long`);
  }
  if (typeof patternProperties === 'object' && patternProperties !== null) {
    for (const key of Object.keys(patternProperties)) {
      if (key.length > SCHEMA_LIMITS.maxPatternLength) {
        throw tooMuch(`${path}.patternProperties`, 'maxPatternLength', `has a pattern ${key.length} characters long`);
      }
    }
  }
}
