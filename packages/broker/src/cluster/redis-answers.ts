/**
 * Does Redis answer? A link's status says whether its connection is up, not whether Redis
 * replies on it: a redis-server that is frozen (a paused VM, a stalled disk under
 * `appendfsync always`, a long-running command) keeps its connections, and a node's links stay
 * 'ready' while no CONNECT can be answered and no QoS 1 publish acknowledged. Before this the
 * node's /readyz said 200 all along (test/cluster/redis-frozen.test.ts).
 *
 * One PING on the data link every WATCH_MS while none is outstanding; while one has waited
 * UNRESPONSIVE_MS or more, Redis counts as not answering (readiness: `redis unavailable`, as for a
 * link that is down), with a log line when that starts and when it answers again. A load balancer
 * then stops sending new clients to the node. The threshold is well above a reply's time
 * under load (the PING waits behind what the link sent before it), so that a busy Redis does not
 * flap the nodes' readiness.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'

export const WATCH_MS = 1000
export const UNRESPONSIVE_MS = 3000

export interface RedisAnswers {
  /** no PING has waited UNRESPONSIVE_MS or more */
  answering(): boolean
  close(): void
}

export function watchRedisAnswers(conn: Redis, log: Logger): RedisAnswers {
  /** when the outstanding PING was sent */
  let since: number | undefined
  let silent = false
  const waited = (): number => (since === undefined ? 0 : Date.now() - since)
  let lastTick = Date.now()
  const timer = setInterval(() => {
    const now = Date.now()
    // this process was the one stalled (frozen, descheduled): the reply may be waiting in its socket
    const late = now - lastTick > 2 * WATCH_MS
    lastTick = now
    if (since !== undefined) {
      if (!silent && !late && waited() >= UNRESPONSIVE_MS) {
        silent = true
        log.warn({ waited_ms: waited() }, 'redis does not answer: not ready until it does')
      }
      return
    }
    if (conn.status !== 'ready') return
    const sent = now
    since = sent
    const answered = (): void => {
      if (since === sent) since = undefined
      if (silent) {
        silent = false
        log.info({ waited_ms: Date.now() - sent }, 'redis answers again')
      }
    }
    // an error reply or a link that closed: the link's status says the rest
    conn.ping().then(answered, answered)
  }, WATCH_MS)
  timer.unref()
  return {
    answering: () => waited() < UNRESPONSIVE_MS,
    close: () => clearInterval(timer),
  }
}
