/**
 * The connections scenario reads a Culex node's heap after forced full GCs (suite/gc-preload.ts).
 * Those GCs come after the measured ramp, never before it: a full GC with no connection open let
 * the maps of the closed warm-up connections die, V8 threw away the code that depended on them and
 * compiled it again inside the measured window (~300-500 µs of CPU per connect; docs/performance.md).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BROKER_CLI, ensureBuilt, ROOT } from './helpers.js'

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'culex-bench-heap-'))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const N = 200

beforeAll(ensureBuilt, 120_000)
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }))

describe('connections: the heap reading', () => {
  it('forces the GCs after the ramp: first with its connections open, then with them closed', async () => {
    const dist = path.join(ROOT, 'packages/bench/dist')
    const { culexNode } = await import(path.join(dist, 'suite/brokers.js'))
    const { runConnections } = await import(path.join(dist, 'scenarios/connections.js'))
    const started = await culexNode.start({ brokerCli: BROKER_CLI, mosquittoBin: 'mosquitto', redisBin: 'redis-server', tmpRoot, mosquittoConf: [] })
    try {
      const pid = started.processes[0].pid as number
      const gcs = (): number => {
        try {
          return JSON.parse(readFileSync(path.join(started.gcDir, `${pid}.json`), 'utf8')).gcs
        } catch {
          return 0
        }
      }
      const connected = async (): Promise<number> => {
        const text = await (await fetch(started.metricsUrls[0])).text()
        return Number(/^culex_clients_connected (\d+)/m.exec(text)?.[1])
      }
      // each time the node answers a GC request, how many clients it has
      const atGc: number[] = []
      let watching = true
      const watch = (async () => {
        let last = gcs()
        while (watching) {
          const g = gcs()
          if (g > last) {
            last = g
            atGc.push(await connected())
          }
          await sleep(5)
        }
      })()
      const report = await runConnections({
        scenario: 'connections', pubUrls: started.pubUrls, subUrls: [], insecure: false, qos: 0, protocol: 4, size: 64,
        durationS: 0.5, warmupS: 0, workers: 1, window: 20, keepaliveS: 60, connectConcurrency: 50, drainTimeoutS: 5,
        pairs: 1, publishers: 1, subscribers: 1, groups: 1, members: 1, rate: 100, connections: N, connectWarmup: 100,
        sourceAddresses: 1, metricsUrls: started.metricsUrls, brokerPids: [], brokerProcesses: started.processes,
        heapGcDir: started.gcDir, progress: false,
      })
      watching = false
      await watch
      expect(report.results).toMatchObject({ connected: N, failures: 0, warmup_connections: 100 })
      // the first GC the watcher sees comes with all N open (never before the ramp); on a loaded
      // machine two GC requests can land between two looks, so the second may go unseen: then the
      // file still counts both
      expect(atGc[0]).toBe(N)
      expect(atGc.slice(1)).toEqual(atGc.length > 1 ? [0] : [])
      expect(gcs()).toBeGreaterThanOrEqual(2)
      // the figure itself: what an idle connection holds (the broker's idle-memory test: ~3 KiB)
      expect(report.results.heap_per_connection_bytes).toBeGreaterThan(1000)
      expect(report.results.heap_per_connection_bytes).toBeLessThan(10_000)
      expect(report.results.heap_after_bytes).toBeGreaterThan(report.results.heap_before_bytes)
    } finally {
      await started.stop()
    }
  }, 60_000)
})
