/**
 * Short (in `npm test`: a few seconds of load per scenario, a rate a shared 2-core CI box holds)
 * or long (`npm run chaos`, CULEX_CHAOS=long: 60 s of load at ~2,500 msg/s per scenario).
 * CULEX_CHAOS_SECONDS and CULEX_CHAOS_RATE override the load of either.
 */
const long = process.env.CULEX_CHAOS === 'long'
const env = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined)

export const PROFILE = {
  name: long ? 'long' : 'short',
  /** seconds of load per scenario */
  seconds: env('CULEX_CHAOS_SECONDS') ?? (long ? 60 : 4),
  /** total publish rate of the 5 publishers, msg/s */
  rate: env('CULEX_CHAOS_RATE') ?? (long ? 2500 : 500),
  publishers: 5,
  /** messages queued for the resuming session */
  queued: 10_000,
  /** vitest timeout of one scenario */
  timeoutMs: long ? 300_000 : 45_000,
}
