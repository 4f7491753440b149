/**
 * The V8 heap of the Culex nodes the suite started, after a full garbage collection: each node
 * loads suite/gc-preload.js, which registers itself in a folder (`<pid>.json`) and collects on
 * SIGUSR2. Summed over the nodes; null when no node registered (a broker the suite did not start).
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sleep } from './engine/limit.js'

/** the environment variable naming the folder (read by suite/gc-preload.ts) */
export const GC_DIR_ENV = 'CULEX_BENCH_GC_DIR'
/** the preload (built), for a node's `--import`; the same path from dist/heap.js and from src/heap.ts (tests) */
export const GC_PRELOAD = fileURLToPath(new URL('../dist/suite/gc-preload.js', import.meta.url))

interface Entry {
  gcs: number
  heap_used_bytes: number
}

/** one registered node's last answer; null when it has none (yet) */
export function parseEntry(text: string): Entry | null {
  try {
    const e = JSON.parse(text) as Partial<Entry>
    return typeof e.gcs === 'number' && typeof e.heap_used_bytes === 'number' ? { gcs: e.gcs, heap_used_bytes: e.heap_used_bytes } : null
  } catch {
    return null
  }
}

function readEntry(dir: string, pid: number): Entry | null {
  try {
    return parseEntry(readFileSync(path.join(dir, `${pid}.json`), 'utf8'))
  } catch {
    return null
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** the PIDs of the live nodes registered in `dir` */
export function registeredNodes(dir: string): number[] {
  let names: string[] = []
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  return names.flatMap((n) => (/^\d+\.json$/.test(n) ? [Number(n.slice(0, -5))] : [])).filter(alive)
}

export interface HeapReading {
  bytes: number
  nodes: number
}

/** Asks every node registered in `dir` for a full GC, waits for each answer, sums their heaps. */
export async function heapAfterGc(dir: string, timeoutMs = 15_000): Promise<HeapReading | null> {
  const pids = registeredNodes(dir)
  if (pids.length === 0) return null
  let bytes = 0
  for (const pid of pids) {
    const before = readEntry(dir, pid)?.gcs ?? 0
    process.kill(pid, 'SIGUSR2')
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const e = readEntry(dir, pid)
      if (e && e.gcs > before) {
        bytes += e.heap_used_bytes
        break
      }
      if (Date.now() > deadline) throw new Error(`node pid ${pid} did not answer a GC request within ${timeoutMs} ms`)
      await sleep(20)
    }
  }
  return { bytes, nodes: pids.length }
}
