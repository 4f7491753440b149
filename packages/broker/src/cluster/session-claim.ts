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
 * sent), its connection closed, or its queue's replay waits for the client's PUBACKs (its Receive
 * Maximum, limits/client-guard.ts: from then on it lasts as long as the client takes; seam
 * onceReplayWaits); another waits for it, and then takes the session over from a connected (or
 * replaying, seam V10) client like any later CONNECT (DISCONNECT 0x8E, the unacknowledged messages sent
 * again with DUP [MQTT-4.4.0-1]). A claim lapses after CLAIM_MS (its node died, or its connect is
 * that slow): the next CONNECT then goes on.
 *
 * The turn and the session are asked for in one script (claimTurnAndSettle): the claim taken, and
 * in the same step whether an end of the session is in progress (cluster/session-ending.ts) and
 * whether the id has a session (Session Present). So a CONNECT that settles costs one round trip
 * and a DEL when nothing is in its way; only while an end is in progress does it poll as
 * session-ending.ts settle does (issue 15: the claim and the settle were two round trips).
 */
import type { Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { onceConnectedOrClosed, onceReplayWaits } from '../seam/index.js'
import { SESSIONS_KEY, SESSION_ENDING_KEY } from './keys.js'
import { NOW_LUA, checkSessionLua, settle } from './session-ending.js'

/** longest a claim holds (and a CONNECT waits for one) */
export const CLAIM_MS = 5000
/** how often a waiting CONNECT looks again */
const POLL_MS = 5

const claimKey = (id: string): string => `culex:session-claim:${id}`
// KEYS[1] claim; ARGV[1] token: the claim goes if it is still the token's
const UNCLAIM_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

// KEYS[1] claim, KEYS[2] ending, KEYS[3] sessions set; ARGV[1] token, ARGV[2] claim ms, ARGV[3] client id
// -> {0, 0, 0}: another holds the claim; {1, age (ms) of an end in progress or -1, 1 if the id has a session}: claimed
const CLAIM_SETTLE_LUA = `
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {0, 0, 0} end
${NOW_LUA}${checkSessionLua('KEYS[2]', 'KEYS[3]', 'ARGV[3]')}
return {1, age, member}
`

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** give the claim of `id` back (unless it lapsed and another took it) */
export async function unclaim(db: Redis, id: string, token: string): Promise<void> {
  await db.eval(UNCLAIM_LUA, 1, claimKey(id), token)
}

/**
 * `client`'s CONNECT of `id` waits for its turn (the claim of `id` for `token`, which lasts until
 * its connect is done or its connection closed; taken anyway after CLAIM_MS), then, once no end of the session is in
 * progress, whether the id has a session (as session-ending.ts settle; `takeOver` finishes a stale
 * end). One round trip when the claim is free and no end is in progress.
 */
export async function claimTurnAndSettle(db: Redis, client: Client, id: string, token: string, log: Logger, takeOver: (id: string) => Promise<boolean>): Promise<boolean> {
  const until = Date.now() + CLAIM_MS
  for (;;) {
    const [claimed, age, member] = (await db.eval(CLAIM_SETTLE_LUA, 3, claimKey(id), SESSION_ENDING_KEY, SESSIONS_KEY, token, CLAIM_MS, id)) as [number, number, number]
    if (claimed === 1) {
      let given = false
      const giveBack = (): void => {
        if (given) return
        given = true
        unclaim(db, id, token).catch((err: Error) => log.warn({ client: id, err: err.message }, 'session claim not given back'))
      }
      onceConnectedOrClosed(client, giveBack)
      onceReplayWaits(client, giveBack)
      return age < 0 ? member === 1 : settle(db, id, takeOver)
    }
    if (Date.now() >= until) {
      log.warn({ client: id }, 'session claim not given back in time: connecting anyway')
      return settle(db, id, takeOver)
    }
    await sleep(POLL_MS)
  }
}
