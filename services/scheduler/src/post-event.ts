import { OUTCOME_CONTENT_TYPE } from '@skiff/events';

/** One HTTP attempt at most this long, from connecting to the response's headers. */
export const POST_TIMEOUT_MS = 10_000;

/**
 * POSTs a CloudEvent (structured mode) to a callback URL: undefined when it answered 2xx, else
 * why not. Redirects are not followed (a 3xx is a failure: the URL is the one deployed), and
 * the response's body is never read, only discarded, so a receiver cannot make it large or slow.
 */
export async function postEvent(url: string, body: Uint8Array): Promise<string | undefined> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': OUTCOME_CONTENT_TYPE },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(POST_TIMEOUT_MS),
    });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    return e.name === 'TimeoutError' ? `no answer within ${POST_TIMEOUT_MS} ms` : `${e.message}${e.cause ? ` (${e.cause.message})` : ''}`;
  }
  await res.body?.cancel().catch(() => undefined);
  return res.status >= 200 && res.status < 300 ? undefined : `answered ${res.status}`;
}
