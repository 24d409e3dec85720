import { describe, expect, it } from 'vitest';
import { untilItWorks } from './until-it-works.js';

describe('untilItWorks', () => {
  it('tries again after each failure until the work resolves, telling each failure', async () => {
    let tries = 0;
    const failures: string[] = [];
    await new Promise<void>((done) => {
      untilItWorks(
        async () => {
          if (++tries < 3) throw new Error(`no ${tries}`);
          done();
        },
        5,
        (err, ms) => failures.push(`${(err as Error).message} ${ms}`),
      );
    });
    expect(tries).toBe(3);
    expect(failures).toEqual(['no 1 5', 'no 2 5']);
  });

  it('cancel() stops the tries still to come', async () => {
    let tries = 0;
    const r = untilItWorks(
      async () => {
        tries++;
        throw new Error('down');
      },
      5,
      () => {},
    );
    await new Promise((t) => setTimeout(t, 1));
    r.cancel();
    const after = tries;
    await new Promise((t) => setTimeout(t, 30));
    expect(after).toBe(1);
    expect(tries).toBe(1);
  });
});
