/**
 * Pure rate and backoff bookkeeping, keyed by source address or username.
 * Time is passed in (milliseconds), so the logic is tested without clocks.
 * Both maps are bounded: a flood of distinct keys (e.g. rotating IPv6
 * addresses) evicts the least recently used ones instead of growing memory.
 */

const DEFAULT_MAX_KEYS = 100_000

/** re-insert so Map iteration order is least recently used first */
function touch<V>(map: Map<string, V>, key: string, value: V, maxKeys: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > maxKeys) map.delete(map.keys().next().value as string)
}

/** a token bucket's state: its tokens as of `at` (milliseconds) */
export interface TokenBucket {
  tokens: number
  at: number
}

/**
 * Refills `b` at `rate` tokens per second, holding at most `burst`, up to `now`, then takes one
 * token; false when there was none (a bucket made at `now` with `burst` tokens starts full).
 */
export function takeToken(b: TokenBucket, now: number, rate: number, burst: number): boolean {
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate)
  b.at = now
  if (b.tokens < 1) return false
  b.tokens -= 1
  return true
}

/** token bucket per key: `rate` tokens per second, holding at most `burst` */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>()

  constructor(
    private readonly rate: number,
    private readonly burst: number = Math.max(1, 2 * rate),
    private readonly maxKeys = DEFAULT_MAX_KEYS,
  ) {}

  /** take one token for key; false when the key is over its rate (rate 0 = unlimited) */
  take(key: string, now: number): boolean {
    if (this.rate <= 0) return true
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now }
    touch(this.buckets, key, b, this.maxKeys)
    return takeToken(b, now, this.rate, this.burst)
  }

  get size(): number {
    return this.buckets.size
  }
}

interface Failures {
  count: number
  last: number
  blockedUntil: number
}

export interface BackoffOptions {
  /** failures before backoff starts (0 = never back off) */
  threshold: number
  /** first backoff; doubles with each further failure */
  baseMs: number
  maxMs: number
  maxKeys?: number
}

/**
 * Failed-login backoff: after `threshold` failures a key is blocked for
 * baseMs, then 2x, 4x ... up to maxMs with each further failure. A key with
 * no failure for 2 x maxMs is forgotten; a success clears it.
 */
export class FailureBackoff {
  private readonly keys = new Map<string, Failures>()
  private readonly maxKeys: number

  constructor(private readonly opts: BackoffOptions) {
    this.maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS
  }

  get enabled(): boolean {
    return this.opts.threshold > 0
  }

  /** record a failure; returns how long the key is now blocked (ms, 0 = not blocked) */
  fail(key: string, now: number): number {
    if (!this.enabled) return 0
    let f = this.live(key, now)
    if (!f) f = { count: 0, last: now, blockedUntil: 0 }
    f.count++
    f.last = now
    const over = f.count - this.opts.threshold
    if (over >= 0) {
      const ms = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(over, 30))
      f.blockedUntil = Math.max(f.blockedUntil, now + ms)
    }
    touch(this.keys, key, f, this.maxKeys)
    return Math.max(0, f.blockedUntil - now)
  }

  succeed(key: string): void {
    this.keys.delete(key)
  }

  /** remaining block of key in ms (0 = may try) */
  blockedFor(key: string, now: number): number {
    const f = this.live(key, now)
    return f ? Math.max(0, f.blockedUntil - now) : 0
  }

  get size(): number {
    return this.keys.size
  }

  private live(key: string, now: number): Failures | undefined {
    const f = this.keys.get(key)
    if (f && now - f.last > 2 * this.opts.maxMs && now >= f.blockedUntil) {
      this.keys.delete(key)
      return undefined
    }
    return f
  }
}

/**
 * The key a source address is limited under: IPv4-mapped IPv6 as plain IPv4,
 * and IPv6 by its /64 (one host usually owns a whole /64, so per-address
 * limits on single IPv6 addresses are trivial to dodge).
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown'
  const a = address.toLowerCase()
  if (a.startsWith('::ffff:') && a.includes('.')) return a.slice(7)
  if (!a.includes(':')) return a
  const zone = a.indexOf('%')
  const bare = zone === -1 ? a : a.slice(0, zone)
  const [head = '', tail = ''] = bare.split('::')
  const h = head ? head.split(':') : []
  const t = bare.includes('::') ? (tail ? tail.split(':') : []) : []
  const groups = bare.includes('::') ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h
  return `${groups
    .slice(0, 4)
    .map((g) => (g || '0').replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}
