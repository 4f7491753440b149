/**
 * The receiving side of receiver pacing (bus-progress.ts says why): after each event-loop turn in
 * which batches arrived, this node publishes on `<channel>:progress` one line, `<its origin>
 * <origin>=<seq>,...`: per sending origin, the number of the last batch delivered in order
 * (bus-order.ts). Cumulative, so a lost line is made good by the next. While the node's own
 * client backlog is over paceBytes (its subscribers are behind) the line waits: what it took in
 * waits for them, not in Redis. A line sent while nothing at all waits for the node's clients ends
 * with `,~` (IDLE): the node keeps up.
 *
 * Sparse lines (issue 15): a line per turn cost the receiving node a Redis PUBLISH per batch
 * (14% of its busy time in the two-node `throughput` bench, 2026-12-01; without the lines both
 * nodes spent 15% less CPU per delivery and the rate rose 18%). So while it keeps up, a node
 * reports only what changes: when every origin its line reports on said it reads sparse lines
 * (`<origin> lead` on the presence channel, bus-delivery.ts), its idle line ends with `,+,~`
 * (SPARSE_IDLE) and the lines after it are skipped while it stays idle, until REFRESH_MESSAGES /
 * REFRESH_BYTES were delivered or REFRESH_MS passed (bus-keep.ts frees what the peers confirmed).
 * The first turn it no longer keeps up it says so at once (its last line's figures, without the
 * marks) and reports every turn again. A node of an older release reads `,+,~` as `,~`, and is
 * never sent sparse lines (it does not say `lead`): it gets a line every turn, as before.
 */
import type { Redis } from 'ioredis'

/**
 * how a line sent with nothing waiting for the node's clients ends, a last entry '~' (no '=': a node of an
 * older release, which looks only for its own `<origin>=` entry, reads the line as before)
 */
export const IDLE = ',~'
/** an idle line of a node that skips the lines after it while it stays idle (a sparse reporter) */
export const SPARSE_IDLE = ',+,~'

/** a report held for the backlog looks at it again after this long */
const REPORT_POLL_MS = 2
/** a sparse reporter sends its line after this many messages or bytes delivered since its last, */
export const REFRESH_MESSAGES = 250
export const REFRESH_BYTES = 64 * 1024
/** or this long after the first delivery it left unreported */
export const REFRESH_MS = 20

export interface ReporterOptions {
  pub: Redis
  /** `<bus channel>:progress` */
  channel: string
  origin: string
  onError: (err: Error) => void
  /** bytes waiting for this node's client sockets: no report while over paceBytes */
  backlog?: () => number
  paceBytes?: number
  /** a peer is live (bus-delivery.ts presence) */
  isLive?: (peer: string) => boolean
}

export class ProgressReporter {
  /** origin -> last batch delivered, not reported yet */
  private readonly pendingReport = new Map<string, number>()
  private reportScheduled = false
  /** the backlog was looked at once this turn (report()) */
  private lookedAgain = false
  /** what the last line said per origin */
  private readonly reported = new Map<string, number>()
  /** the last line was sparse-idle (`,+,~`): lines are skipped while idle */
  private sparseNow = false
  /** delivered since the last line */
  private unreported = { messages: 0, bytes: 0 }
  private refreshTimer: NodeJS.Timeout | undefined
  private closed = false
  /** origins that read sparse lines (presence `lead`) */
  private readonly readsSparse = new Set<string>()

  constructor(private readonly o: ReporterOptions) {}

  /** batches of `origin` up to `seq` are delivered here: report it after this turn */
  delivered(origin: string, seq: number, messages = 1, bytes = 0): void {
    this.pendingReport.set(origin, seq)
    this.unreported.messages += messages
    this.unreported.bytes += bytes
    if (this.reportScheduled) return
    this.reportScheduled = true
    setImmediate(this.report)
  }

  private readonly report = (): void => {
    this.reportScheduled = false
    if (this.closed || this.pendingReport.size === 0) return
    // this node's subscribers are behind: what it took in waits for them, not in Redis
    const backlog = this.o.backlog ? this.o.backlog() : 0
    // the turn's deliveries may still be corked (listeners/write-batching.ts flushes in this check
    // phase, after this when Aedes wrote them a callback later): look again once they went
    if (backlog > 0 && !this.lookedAgain) {
      this.lookedAgain = true
      this.reportScheduled = true
      setImmediate(this.report)
      return
    }
    this.lookedAgain = false
    if (backlog > (this.o.paceBytes ?? Infinity)) {
      // its senders lead on its last line: say at once that it no longer keeps up
      if (this.sparseNow) {
        this.publish(this.reported, '')
        this.sparseNow = false
      }
      this.reportScheduled = true
      setTimeout(this.report, REPORT_POLL_MS)
      return
    }
    const sparse = backlog === 0 && this.allReadSparse()
    // still keeping up, as its last line said: its senders need no line yet
    if (sparse && this.sparseNow && this.unreported.messages < REFRESH_MESSAGES && this.unreported.bytes < REFRESH_BYTES) {
      if (!this.refreshTimer) {
        this.refreshTimer = setTimeout(this.refresh, REFRESH_MS)
        this.refreshTimer.unref()
      }
      return
    }
    for (const [origin, seq] of this.pendingReport) this.reported.set(origin, seq)
    // every client socket took what this node wrote to it, and no delivery waits for an in-flight
    // slot: it keeps up, its senders may go IDLE_LEAD_SENDS sends past this line (reached()), or
    // SPARSE_LEAD_MESSAGES when it skips the lines after this one
    this.publish(this.pendingReport, backlog !== 0 ? '' : sparse ? SPARSE_IDLE : IDLE)
    this.pendingReport.clear()
    this.sparseNow = sparse
  }

  /** a sparse reporter's line, REFRESH_MS after the first delivery it left unreported */
  private readonly refresh = (): void => {
    this.refreshTimer = undefined
    if (this.closed || this.reportScheduled || this.pendingReport.size === 0) return
    // as if the thresholds were reached: the turn's rules otherwise
    this.unreported.messages = REFRESH_MESSAGES
    this.report()
  }

  private publish(entries: Map<string, number>, end: string): void {
    if (entries.size === 0) return
    let line = ''
    for (const [origin, seq] of entries) {
      // a node gone without a bye (killed): its entry is not carried on
      if (this.o.isLive && !this.o.isLive(origin)) this.reported.delete(origin)
      else line += `${line ? ',' : ''}${origin}=${seq}`
    }
    if (!line) return
    this.unreported = { messages: 0, bytes: 0 }
    clearTimeout(this.refreshTimer)
    this.refreshTimer = undefined
    this.o.pub.publish(this.o.channel, `${this.o.origin} ${line}${end}`).catch((err: Error) => this.o.onError(err))
  }

  /** every origin this line reports on reads sparse lines */
  private allReadSparse(): boolean {
    for (const origin of this.pendingReport.keys()) if (!this.readsSparse.has(origin)) return false
    return true
  }

  /** `peer` reads sparse lines (its presence `lead`, bus-delivery.ts) */
  readsSparseLines(peer: string): void {
    this.readsSparse.add(peer)
  }

  /** the peer left */
  forget(peer: string): void {
    this.readsSparse.delete(peer)
    this.reported.delete(peer)
  }

  close(): void {
    this.closed = true
    clearTimeout(this.refreshTimer)
  }
}
