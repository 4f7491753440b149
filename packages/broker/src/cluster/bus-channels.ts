/**
 * Channels of the cluster bus (issue 15: a node no longer reads its own batches back).
 *
 * Until this release every node PUBLISHed its batches on the one bus channel (`<channel>`) and
 * was SUBSCRIBEd to it, so each node read every batch it sent back from Redis and dropped it by
 * origin: an extra read and wake-up per batch on the sender, and Redis wrote every batch once
 * more. Now a node publishes on a channel of its own, `<channel>:n:<origin>` (origin: the bus'
 * 16-hex random id), and listens to every OTHER node's with a fixed set of PSUBSCRIBE patterns
 * that match every origin but its own: for each position i of its origin,
 * `<channel>:n:` + origin[0..i) + `[^` + origin[i] + `]*`. A channel of another origin matches
 * exactly the pattern of the first position where the two differ (the earlier ones need a
 * differing character where they agree, the later ones the same character where they differ),
 * so Redis' PUBLISH reply (channel subscribers + pattern matches) counts each other node's link
 * once, and not ours. No per-peer SUBSCRIBE: a node that starts is covered from its first batch.
 *
 * Mixed clusters (a rolling upgrade): a node of the previous release publishes and listens on
 * `<channel>` only. A node of this release says so on the presence channel (`<origin> n`, a line
 * beside its beat `<origin> <base>`; a node of the previous release ignores a line whose second
 * word is no number, nor 'bye', nor a resend request: bus-delivery.ts onPresence), stays
 * SUBSCRIBEd to `<channel>` (so it hears older nodes, and drops its own batches there by origin
 * as before), and publishes on its own channel only while every live peer said it listens there
 * and its own subscriber link has been hearing the presence channel for SILENT_MS (a node that
 * starts has heard every live node by then: each beats every BEAT_MS). Otherwise it publishes on
 * `<channel>`. Receivers restore the order per origin by batch number (bus-order.ts), and both
 * channels reach a receiver on its one subscriber link in the order Redis took the PUBLISHes, so
 * a switch either way mid-stream loses and repeats nothing.
 *
 * Progress lines (bus-progress.ts) follow the same rule on `<channel>:progress:n:<origin>` and
 * `<channel>:progress`, read on the control link.
 */

/** the presence line that says a node listens on the per-node channels */
export const NODE_CHANNELS = 'n'

/** `<channel>:n:` */
export function nodePrefix(channel: string): string {
  return `${channel}:n:`
}

/** the channel `origin` publishes its batches on while every live node listens there */
export function nodeChannel(channel: string, origin: string): string {
  return nodePrefix(channel) + origin
}

/** Redis glob special characters in a fixed part of a pattern */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\^]/g, (c) => `\\${c}`)
}

/**
 * PSUBSCRIBE patterns matching `<channel>:n:<o>` for every origin `o` of origin's length but
 * `origin` itself, each such channel by exactly one pattern (see above)
 */
export function otherNodesPatterns(channel: string, origin: string): string[] {
  const prefix = escapeGlob(nodePrefix(channel))
  const out: string[] = []
  for (let i = 0; i < origin.length; i++) out.push(`${prefix}${escapeGlob(origin.slice(0, i))}[^${escapeGlob(origin[i]!)}]*`)
  return out
}
