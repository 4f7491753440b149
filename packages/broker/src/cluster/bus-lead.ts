/**
 * How far a pacing peer may be behind a batch that goes (receiver pacing, bus-progress.ts; issue
 * 15): its messages and those before it the peer has not delivered. Enough to keep the peer busy
 * over its report's round trip, so that the publishers' rate does not drop to their window per
 * round trip; little enough that what waits for the peer stays a few ms of its work.
 *
 * At least AHEAD_MESSAGES; more when the peer delivers faster: what it delivered in LEAD_MS at its
 * rate measured from its progress lines over RATE_WINDOW_MS, at most AHEAD_MESSAGES_MAX. A lead in
 * the peer's time holds its standing queue at ~LEAD_MS of its work whatever a message costs it: a
 * fan-out (each message written to many sockets, a few thousand messages a second) keeps the
 * floor; a plain flow at tens of thousands a second gets about one round trip at that rate. A
 * fixed 50 is ~0.7 ms at 70k messages/s, under the report's round trip on a loaded 2-core
 * machine: the lead, not the peer, held the `throughput` bench's rate across nodes.
 */
export const AHEAD_MESSAGES = 50
export const AHEAD_MESSAGES_MAX = 400
export const LEAD_MS = 2
/** a peer's delivery rate is measured over at least this long */
const RATE_WINDOW_MS = 20

interface PeerRate {
  /** when the current window began, and the peer's delivered message count then */
  since: number
  messages: number
  /** its rate of the last window x LEAD_MS, within the bounds */
  lead: number
}

export class PeerLeads {
  private readonly rates = new Map<string, PeerRate>()

  /** the peer's line: it has delivered our messages up to the `messages`-th (a count we keep) */
  delivered(peer: string, messages: number): void {
    const now = performance.now()
    const r = this.rates.get(peer)
    if (!r) {
      this.rates.set(peer, { since: now, messages, lead: AHEAD_MESSAGES })
      return
    }
    const ms = now - r.since
    if (ms < RATE_WINDOW_MS) return
    const lead = Math.round(((messages - r.messages) / ms) * LEAD_MS)
    r.lead = Math.min(AHEAD_MESSAGES_MAX, Math.max(AHEAD_MESSAGES, lead))
    r.since = now
    r.messages = messages
  }

  /** messages the peer may be behind a batch that goes */
  of(peer: string): number {
    return this.rates.get(peer)?.lead ?? AHEAD_MESSAGES
  }

  forget(peer: string): void {
    this.rates.delete(peer)
  }
}
