import { describe, expect, it } from 'vitest';
import { destinationSubjectProblem, destinationUrlProblem, destinationsProblems, destinationsSchema } from './destinations.js';

describe('destinations', () => {
  it('take a literal subject outside the platform, and refuse wildcards and the platform\'s subjects', () => {
    for (const ok of ['orders.done', 'a', 'team-1.fn_out.x']) expect(destinationSubjectProblem(ok), ok).toBeUndefined();
    for (const bad of ['orders.*', 'orders.>', '>', 'skiff.invoke', '_INBOX.x', '$JS.API.INFO', 'a..b', '', 'a b']) expect(destinationSubjectProblem(bad), bad).toBeDefined();
  });

  it('take absolute http and https URLs, and refuse other schemes, relative URLs, user info and overlong ones', () => {
    for (const ok of ['http://127.0.0.1:8080/hook', 'https://example.com/a?b=c']) expect(destinationUrlProblem(ok), ok).toBeUndefined();
    expect(destinationUrlProblem('ftp://example.com/x')).toMatch(/http/);
    expect(destinationUrlProblem('/relative')).toMatch(/absolute/);
    expect(destinationUrlProblem('file:///etc/passwd')).toMatch(/http/);
    expect(destinationUrlProblem('https://user:secret@example.com/')).toMatch(/user name or password/);
    expect(destinationUrlProblem('https://user@example.com/')).toMatch(/user name or password/);
    expect(destinationUrlProblem(`https://example.com/${'a'.repeat(2048)}`)).toMatch(/2048/);
  });

  it('name the field of each problem, and need at least one destination', () => {
    expect(destinationsProblems({}, 'body.destinations')).toEqual([{ field: 'body.destinations', message: 'must have a subject, a url, or both' }]);
    expect(destinationsProblems({ subject: 'a.*', url: 'ftp://x' }, 'body.destinations').map((p) => p.field)).toEqual(['body.destinations.subject', 'body.destinations.url']);
    expect(destinationsProblems({ subject: 'orders.done', url: 'https://example.com/' }, 'body.destinations')).toEqual([]);
  });

  it('as a schema refuse the same, and unknown fields', () => {
    expect(destinationsSchema.safeParse({ subject: 'orders.done' }).success).toBe(true);
    expect(destinationsSchema.safeParse({ subject: 'skiff.x' }).success).toBe(false);
    expect(destinationsSchema.safeParse({ url: 'https://example.com/', other: 1 }).success).toBe(false);
    expect(destinationsSchema.safeParse({}).success).toBe(false);
  });
});
