// cpu: counts the primes up to event.n with a sieve of Eratosthenes; n is at most 20,000,000
// (a 20 MB sieve), so one call stays within the function's memory and deadline.
const MAX_N = 20_000_000;

export default async function cpu(event) {
  const n = event?.n;
  if (!Number.isInteger(n) || n < 2 || n > MAX_N) throw new RangeError(`"n" must be an integer from 2 to ${MAX_N}`);
  const started = performance.now();
  const composite = new Uint8Array(n + 1);
  let primes = 0;
  let largest = null;
  for (let i = 2; i <= n; i++) {
    if (composite[i]) continue;
    primes++;
    largest = i;
    for (let j = i * i; j <= n; j += i) composite[j] = 1;
  }
  return { n, primes, largest, ms: Math.round((performance.now() - started) * 100) / 100 };
}
