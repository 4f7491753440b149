/**
 * A client whose connection Aedes closes because Redis refused a command made for it: out of
 * memory under `maxmemory` (noeviction), READONLY from a replica, a script error. Nothing is
 * acknowledged for it (a QoS 1 publish whose storing failed gets no PUBACK: the publisher sends
 * it again), but the close is the node's side's doing, not the client's, and a publisher
 * disconnected again and again with nothing in the log at info level is what an operator must
 * not have to guess at. So a warning, where a client's own errors (malformed packets, timeouts)
 * stay at debug; at most one line per distinct Redis message every WINDOW_MS (a full Redis
 * refuses every client's writes), saying how many closes it stood for; and a count in
 * `culex_client_errors_total{reason="redis"}`. Pure apart from the logger and the clock.
 */
import type { Logger } from '../log.js'

export const WINDOW_MS = 10_000

/** ioredis' error replies are redis-errors' ReplyError (its `name` is the class name) */
export function isRedisRefusal(err: Error): boolean {
  return err.name === 'ReplyError'
}

/** what Redis said: a MULTI's EXECABORT carries the refusal that aborted it (ioredis `previousErrors`) */
export function refusalText(err: Error): string {
  const first = (err as Error & { previousErrors?: Error[] }).previousErrors?.[0]
  return first ? `${first.message} (${err.message})` : err.message
}

/**
 * one line per distinct text per WINDOW_MS: for a text, the number of lines it left out since its
 * last one (0 or more) when one is due now, undefined when not (at most 100 texts remembered)
 */
function perWindow(now: () => number): (text: string) => number | undefined {
  const seen = new Map<string, { at: number; skipped: number }>()
  return (text) => {
    const t = now()
    const s = seen.get(text)
    if (s && t - s.at < WINDOW_MS) {
      s.skipped++
      return undefined
    }
    seen.set(text, { at: t, skipped: 0 })
    if (seen.size > 100) seen.delete(seen.keys().next().value!)
    return s?.skipped ?? 0
  }
}

/** call with every client error; true when it was a Redis refusal (counted, maybe logged) */
export function redisRefusals(log: Logger, counted: () => void, now: () => number = Date.now): (client: string | undefined, err: Error) => boolean {
  const due = perWindow(now)
  return (client, err) => {
    if (!isRedisRefusal(err)) return false
    counted()
    const text = refusalText(err)
    const before = due(text)
    if (before !== undefined) log.warn({ client, err: text, ...(before > 0 ? { more_closes_before: before } : {}) }, 'client closed: Redis refused a command for it')
    return true
  }
}

/**
 * A warning about a Redis write made for a client that failed (`msg`, e.g. 'session owner not
 * stored'), at most one line per distinct error text per WINDOW_MS, saying how many it stood for:
 * a Redis at `maxmemory` fails such a write for every CONNECT, and a line per connection is a flood.
 */
export function redisWarnings(log: Logger, msg: string, now: () => number = Date.now): (client: string | undefined, err: Error) => void {
  const due = perWindow(now)
  return (client, err) => {
    const text = refusalText(err)
    const before = due(text)
    if (before !== undefined) log.warn({ client, err: text, ...(before > 0 ? { more_before: before } : {}) }, msg)
  }
}
