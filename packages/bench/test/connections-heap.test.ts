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
      // the preload records the TCP sockets the node had open at each GC it ran (suite/gc-preload.ts)
      const gcFile = (): { gcs: number; sockets_at_gc: number[] } => JSON.parse(readFileSync(path.join(started.gcDir, `${pid}.json`), 'utf8'))
      const report = await runConnections({
        scenario: 'connections', pubUrls: started.pubUrls, subUrls: [], insecure: false, qos: 0, protocol: 4, size: 64,
        durationS: 0.5, warmupS: 0, workers: 1, window: 20, keepaliveS: 60, connectConcurrency: 50, drainTimeoutS: 5,
        pairs: 1, publishers: 1, subscribers: 1, groups: 1, members: 1, rate: 100, connections: N, connectWarmup: 100,
        sourceAddresses: 1, metricsUrls: started.metricsUrls, brokerPids: [], brokerProcesses: started.processes,
        heapGcDir: started.gcDir, progress: false,
      })
      expect(report.results).toMatchObject({ connected: N, failures: 0, warmup_connections: 100 })
      // two GCs: the first with the ramp's N connections open (never before the ramp: the warm-up
      // had 100), the second once they closed; a few sockets beside them (the scrapes of /metrics)
      const { gcs, sockets_at_gc: sockets } = gcFile()
      expect(gcs).toBe(2)
      expect(sockets).toHaveLength(2)
      expect(sockets[0]).toBeGreaterThanOrEqual(N)
      expect(sockets[0]).toBeLessThan(N + 20)
      expect(sockets[1]).toBeLessThan(20)
      // the figure itself: what an idle connection holds (the broker's idle-memory test: ~3 KiB)
      expect(report.results.heap_per_connection_bytes).toBeGreaterThan(1000)
      expect(report.results.heap_per_connection_bytes).toBeLessThan(10_000)
      expect(report.results.heap_after_bytes).toBeGreaterThan(report.results.heap_before_bytes)
    } finally {
      await started.stop()
    }
  }, 60_000)
})
