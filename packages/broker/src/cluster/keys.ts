/**
 * Redis key names of the cluster. The `will*`, `clients` and `client:*` keys
 * are aedes-persistence-redis' own layout (kept byte-compatible so a stock
 * node and a Culex node read the same data); `culex:*` keys are ours.
 */

/** sorted set: node id -> time (ms, Redis clock) its registration lapses */
export const NODES_KEY = 'culex:nodes'
/** hash with one node's details; expires with its heartbeat */
export const nodeKey = (nodeId: string): string => `culex:node:${nodeId}`
/** set of the client ids connected to a node */
export const nodeClientsKey = (nodeId: string): string => `culex:node:${nodeId}:clients`
/** set of the client ids that have a session, for CONNACK's Session Present (broker/conformance-session.ts) */
export const SESSIONS_KEY = 'culex:sessions'
/** lock held by the one node that sweeps wills of dead nodes */
export const WILL_LOCK_KEY = 'culex:lock:wills'
/** hash: client id -> `<connection token> <plan>` of its current connection (cluster/session-expiry.ts) */
export const SESSION_OWNER_KEY = 'culex:session-owner'
/** hash: client id -> connection token, of the clients connected to one node (session-expiry.ts adopts them when it dies) */
export const nodeSessionsKey = (nodeId: string): string => `culex:node:${nodeId}:sessions`
/** sorted set: client id -> time (ms, Redis clock) its disconnected session expires */
export const SESSION_DEADLINES_KEY = 'culex:session-expiry'
/**
 * hash: client id -> `<token> <time (ms, Redis clock)>` of a session end in progress (its state is
 * being deleted; cluster/session-expiry.ts): a CONNECT for the id waits until it is gone
 */
export const SESSION_ENDING_KEY = 'culex:session-ending'
/** set: the will keys the will list (`will`) holds, each once (cluster/will-store.ts) */
export const WILLS_LISTED_KEY = 'culex:wills:listed'
/** sorted set: will key -> time (ms, Redis clock) the delayed will is due (cluster/wills.ts) */
export const WILLS_DUE_KEY = 'culex:wills:due'
/** channel on which nodes announce subscription changes (replaces aedes' $SYS/sub/+ broadcast) */
export const SUBS_CHANNEL_ADD = '$SYS/culex/sub/add'
export const SUBS_CHANNEL_RM = '$SYS/culex/sub/rm'

// aedes-persistence-redis layout: defined at the seam (seam/persistence.ts), re-exported here
export { WILLS_LIST, CLIENTS_SET, willKey, clientSubsKey, outgoingKey } from '../seam/persistence.js'

/** `will:<broker>:<client>` -> its parts (node ids never contain ':') */
export function parseWillKey(key: string): { brokerId: string; clientId: string } | undefined {
  const m = /^will:([^:]*):(.*)$/.exec(key)
  if (!m) return undefined
  try {
    return { brokerId: m[1]!, clientId: decodeURIComponent(m[2]!) }
  } catch {
    return undefined
  }
}
