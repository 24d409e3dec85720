import { RE2JS } from 're2js';

/**
 * A regular-expression engine for Ajv's `code.regExp` option that matches in time linear in the
 * input (RE2's automata; no backtracking), so a user's `pattern` such as `^(a+)+$` cannot hold the
 * event loop whatever the request body. RE2 has no lookaround and no backreferences: a pattern
 * using them fails to compile, which the deploy reports as a 400 naming the schema field.
 */
export function linearRegExp(pattern: string): { test(input: string): boolean } {
  const re = RE2JS.compile(pattern);
  // JSON Schema's `pattern` is a search, not a whole-input match: RE2JS.test is the search.
  return { test: (input) => re.test(input) };
}
// Ajv names the engine in generated code that is only used for standalone output.
linearRegExp.code = 'linearRegExp';
