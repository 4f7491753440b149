/**
 * Watches the broker processes while a flood runs: the peak resident memory
 * of every process (and every child it started: `culex cluster up`'s nodes,
 * Redis, HAProxy), read from /proc every POLL_MS, and how long after the load
 * stopped the brokers went idle (CPU under IDLE_SHARE of a core over one
 * poll). Without PIDs (a broker somewhere else) it polls the
 * process_resident_memory_bytes of each /metrics URL instead, and knows no CPU.
 */
import { readFileSync } from 'node:fs'
import { descendants, ticksOf, TICKS_PER_S } from './broker-cpu.js'
import type { WatchedProcess } from './options.js'
import { rssFromMetrics } from './memory.js'

const POLL_MS = 100
/** a process is idle when it used less than this share of one core over a poll */
const IDLE_SHARE = 0.1

export interface PeakRss {
  process: string
  bytes: number
}

interface Proc {
  name: string
  pid: number
  peak: number
  ticks: number | null
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

function rssOf(pid: number): number | null {
  const m = /^VmRSS:\s+(\d+)\s*kB/m.exec(read(`/proc/${pid}/status`) ?? '')
  return m ? Number(m[1]) * 1024 : null
}

/** a child's name: its --node-id when it has one, else its program name */
function childName(root: string, pid: number): string {
  const cmd = (read(`/proc/${pid}/cmdline`) ?? '').split('\0')
  const i = cmd.indexOf('--node-id')
  const id = i >= 0 ? cmd[i + 1] : undefined
  const comm = (read(`/proc/${pid}/comm`) ?? '?').trim()
  return `${root}: ${id ? `node ${id}` : comm} (pid ${pid})`
}

export class BrokerWatch {
  private readonly procs = new Map<number, Proc>()
  private readonly urlPeaks = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null
  private stoppedAt: number | null = null
  private idleAt: number | null = null
  private drainedAt: number | null = null
  private idleAfterDrainAt: number | null = null
  private polling = false

  constructor(
    private readonly roots: WatchedProcess[],
    private readonly metricsUrls: string[],
  ) {}

  start(): void {
    this.poll()
    this.timer = setInterval(() => this.poll(), POLL_MS)
  }

  /** the load stopped: from now on, look for the moment every process is idle */
  loadStopped(): void {
    this.stoppedAt = Date.now()
  }

  /**
   * the last message owed has arrived (or the drain gave up): from now on, look for the moment every
   * process is idle again. A broker that reads its publishers slower than they write leaves seconds of
   * messages in the kernel's socket buffers after the load stops, Mosquitto too; what it still does
   * after the last delivery is work of its own (buffers, retries).
   */
  drained(): void {
    this.drainedAt = Date.now()
  }

  /** seconds from drained() to idle (up to maxMs), null if unknown */
  async settleAfterDrain(maxMs: number): Promise<number | null> {
    if (this.roots.length === 0 || this.drainedAt === null) return null
    const deadline = this.drainedAt + maxMs
    while (this.idleAfterDrainAt === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS))
    return this.idleAfterDrainAt === null ? Math.round(maxMs / 100) / 10 : Math.round((this.idleAfterDrainAt - this.drainedAt) / 100) / 10
  }

  /** waits (up to maxMs after loadStopped) for the brokers to go idle; seconds from load stop to idle, null if unknown */
  async settle(maxMs: number): Promise<number | null> {
    if (this.roots.length === 0 || this.stoppedAt === null) return null
    const deadline = this.stoppedAt + maxMs
    while (this.idleAt === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS))
    return this.idleAt === null ? Math.round(maxMs / 100) / 10 : Math.round((this.idleAt - this.stoppedAt) / 100) / 10
  }

  stop(): PeakRss[] {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    const out: PeakRss[] = [...this.procs.values()].map((p) => ({ process: p.name, bytes: p.peak }))
    for (const [url, bytes] of this.urlPeaks) out.push({ process: url, bytes })
    return out
  }

  private poll(): void {
    let allIdle = true
    for (const root of this.roots) {
      for (const pid of descendants(root.pid)) {
        let p = this.procs.get(pid)
        if (!p) {
          p = { name: pid === root.pid ? root.name : childName(root.name, pid), pid, peak: 0, ticks: null }
          this.procs.set(pid, p)
        }
        const rss = rssOf(pid)
        if (rss !== null && rss > p.peak) p.peak = rss
        const ticks = ticksOf(pid)
        if (ticks !== null && p.ticks !== null && ticks - p.ticks > (IDLE_SHARE * TICKS_PER_S * POLL_MS) / 1000) allIdle = false
        p.ticks = ticks
      }
    }
    if (this.stoppedAt !== null && this.idleAt === null && allIdle) this.idleAt = Date.now()
    if (this.drainedAt !== null && this.idleAfterDrainAt === null && allIdle) this.idleAfterDrainAt = Date.now()
    if (this.roots.length === 0 && this.metricsUrls.length > 0 && !this.polling) {
      this.polling = true
      Promise.all(
        this.metricsUrls.map((u) =>
          rssFromMetrics(u, 1000).then(
            (b) => this.urlPeaks.set(u, Math.max(b, this.urlPeaks.get(u) ?? 0)),
            () => undefined,
          ),
        ),
      ).finally(() => (this.polling = false))
    }
  }
}
