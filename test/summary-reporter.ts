import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

/**
 * A test that was meant to run but never did because a beforeAll of its suite, or of its file,
 * threw: vitest reports it skipped, with the error on the suite or the module.
 */
function blockedByHook(t: TestCase): boolean {
  if (t.result().state !== 'skipped' || t.options.mode !== 'run') return false;
  for (let s: TestSuite | TestModule = t.parent; ; s = s.parent) {
    if (s.errors().length > 0) return true;
    if (s.type === 'module') return false;
  }
}

/** Ends the run with one plain line, "tests: N passed, N failed, N skipped", that any tool can read. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = blockedByHook(t) ? 'failed' : t.result().state;
        if (state === 'passed' || state === 'failed' || state === 'skipped') count[state]++;
      }
      // A suite that failed to load has no tests to count but must not read as a pass.
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) count.failed++;
    }
    process.stdout.write(`\ntests: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
