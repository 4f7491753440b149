/** Resident memory of the broker under test, from /proc/PID/status or a Prometheus /metrics URL. */
import { readFile } from 'node:fs/promises'

export async function rssFromPid(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+)\s*kB/m.exec(status)
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

/** Sum of every process_resident_memory_bytes sample in a Prometheus text exposition. */
export function parseRssMetric(text: string): number {
  let total = 0
  let found = false
  for (const line of text.split('\n')) {
    const m = /^process_resident_memory_bytes(?:\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line)
    if (m) {
      total += Number(m[1])
      found = true
    }
  }
  if (!found) throw new Error('metric process_resident_memory_bytes not found')
  return total
}

export async function rssFromMetrics(url: string, timeoutMs = 5000): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`)
  return parseRssMetric(await res.text())
}

export interface RssReading {
  bytes: number
  source: string
}

/** Total RSS over all given PIDs and metrics URLs; null when none is given. */
export async function readBrokerRss(pids: number[], urls: string[]): Promise<RssReading | null> {
  if (pids.length === 0 && urls.length === 0) return null
  let bytes = 0
  for (const pid of pids) bytes += await rssFromPid(pid)
  for (const url of urls) bytes += await rssFromMetrics(url)
  const source = [...pids.map((p) => `pid:${p}`), ...urls.map((u) => `metrics:${u}`)].join(',')
  return { bytes, source }
}
