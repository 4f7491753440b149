/**
 * Two CONNECTs of one client id at about the same time, on two nodes (or one), for a session
 * with queued messages: each is answered Session Present 1 and starts sending the queue; then
 * each node hears of the other's connection and one is closed (seam closeSameClientsUnlessKept:
 * the one registered last keeps the session [MQTT-3.1.4-3]). Both sent the same messages meanwhile,
 * and the loser, closed before its connect was done, was not told why (Aedes sends DISCONNECT 0x8E
 * only to a connected client; seam V10, aedes-v5-disconnect.ts, now sends it from the CONNACK on, but the
 * duplicate sending stays without the turns below).
 *
 * So the CONNECTs of a client id take turns: one (its preConnect step, before its session is
 * read) takes `culex:session-claim:<id>` and gives it back once its connect is done (its queue
 * sent) or its connection closed; another waits for it, and then takes the session over from a
 * connected client like any later CONNECT (DISCONNECT 0x8E, the unacknowledged messages sent
 * again with DUP [MQTT-4.4.0-1]). A claim lapses after CLAIM_MS (its node died, or its connect is
 * that slow): the next CONNECT then goes on. Cost: a SET NX and a DEL per CONNECT that settles.
 */
import type { Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { onceConnectedOrClosed } from '../seam/index.js'

/** longest a claim holds (and a CONNECT waits for one) */
export const CLAIM_MS = 5000
/** how often a waiting CONNECT looks again */
const POLL_MS = 5

const claimKey = (id: string): string => `culex:session-claim:${id}`
// KEYS[1] claim; ARGV[1] token: the claim goes if it is still the token's
const UNCLAIM_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** take the claim of `id` for `token`, waiting while another holds it; false if it did not come within CLAIM_MS */
export async function claim(db: Redis, id: string, token: string): Promise<boolean> {
  const until = Date.now() + CLAIM_MS
  for (;;) {
    if ((await db.set(claimKey(id), token, 'PX', CLAIM_MS, 'NX')) === 'OK') return true
    if (Date.now() >= until) return false
    await sleep(POLL_MS)
  }
}

/** give the claim of `id` back (unless it lapsed and another took it) */
export async function unclaim(db: Redis, id: string, token: string): Promise<void> {
  await db.eval(UNCLAIM_LUA, 1, claimKey(id), token)
}

/** `client`'s CONNECT of `id` waits for its turn, which lasts until its connect is done or its connection closed */
export async function claimTurn(db: Redis, client: Client, id: string, token: string, log: Logger): Promise<void> {
  if (!(await claim(db, id, token))) {
    log.warn({ client: id }, 'session claim not given back in time: connecting anyway')
    return
  }
  onceConnectedOrClosed(client, () => {
    unclaim(db, id, token).catch((err: Error) => log.warn({ client: id, err: err.message }, 'session claim not given back'))
  })
}
