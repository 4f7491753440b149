/**
 * Mutation fuzzer against real nodes (the built CLI), in memory and with
 * Redis, over TCP and WebSocket (test/helpers/fuzz): after a valid CONNECT
 * with a subscription and in-flight QoS 1/2 state in place, mutated packets
 * of every type. The node must never exit, no exception may escape a
 * client's handling, and a well-behaved QoS 1 client on the same node (same
 * transport) must lose nothing.
 *
 * `npm test` runs a few thousand cases; the long run is `npm run fuzz -- --cases 1000000`
 * (scripts/fuzz.mjs), which sets the CULEX_FUZZ_* variables read here.
 */
import { appendFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { afterAll, describe, expect, it } from 'vitest'
import { Canary, connackOf, spawnNode, startRedis, stopAll, type SpawnedNode } from '../helpers/security-node.js'
import { runFuzz } from '../helpers/fuzz/run.js'
import type { Transport } from '../helpers/fuzz/conn.js'

const env = process.env
const CASES = Number(env.CULEX_FUZZ_CASES ?? 3000)
const SEED = Number(env.CULEX_FUZZ_SEED ?? Date.now() % 2 ** 31)
const MODES = (env.CULEX_FUZZ_MODES ?? 'memory,redis').split(',') as Array<'memory' | 'redis'>
const TRANSPORTS = (env.CULEX_FUZZ_TRANSPORTS ?? 'tcp,ws').split(',') as Transport[]
const WORKERS = Number(env.CULEX_FUZZ_WORKERS ?? 24)
const TIMEOUT_MS = Number(env.CULEX_FUZZ_TIMEOUT_MS ?? 250)
const PER_RUN = Math.ceil(CASES / (MODES.length * TRANSPORTS.length))
const MAX_PACKET = 16384
/** JSON lines of results, for the long run's report */
const OUT = env.CULEX_FUZZ_OUT

async function clientErrors(http: number, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()
  return Number(new RegExp(`^culex_client_errors_total\\{reason="${reason}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
}

afterAll(stopAll)

describe.each(MODES)('mutation fuzzer, node %s', (mode) => {
  let node: SpawnedNode | undefined
  const start = async (): Promise<SpawnedNode> => {
    const redis = mode === 'redis' ? await startRedis() : undefined
    return spawnNode({
      ...(redis ? { redis_url: redis.url } : {}),
      allow_anonymous: true,
      log_level: 'info',
      connect_timeout_ms: 2000,
      max_connects_per_s_per_ip: 0,
      auth_fail_threshold: 0,
      max_connections: 100_000,
      max_packet_size: MAX_PACKET,
    })
  }

  it.each(TRANSPORTS)(
    `survives ${PER_RUN} mutated cases over %s (seed ${SEED}); the well-behaved QoS 1 client loses nothing`,
    async (transport) => {
      if (!node || node.exited()) node = await start()
      const n = node
      const port = transport === 'tcp' ? n.ports.mqtt : n.ports.ws
      const url = transport === 'tcp' ? `mqtt://127.0.0.1:${port}` : `ws://127.0.0.1:${port}/mqtt`
      const canary = await Canary.start(url)
      const r = await runFuzz(
        { transport, port, alive: () => !n.exited() },
        {
          cases: PER_RUN,
          seed: SEED,
          workers: WORKERS,
          caseTimeoutMs: TIMEOUT_MS,
          maxPacketSize: MAX_PACKET,
          progressMs: 30_000,
          onProgress: (done, s) => console.log(`fuzz ${mode}-${transport}: ${done} cases, ${(done / s).toFixed(0)}/s`),
        },
      )
      // generous: on a loaded machine a QoS 1 round trip can take seconds; late is not lost
      const c = await canary.finish(15_000)
      const exceptions = n.exited() ? NaN : await clientErrors(n.ports.http, 'exception')
      const summary = {
        mode,
        transport,
        seed: SEED,
        cases: r.cases,
        crashes: r.crashed ? 1 : 0,
        exceptions,
        canary_sent: c.sent,
        canary_lost: c.lost,
        canary_acked_lost: c.ackedLost,
        canary_closed_at: canary.closedAt === undefined ? null : new Date(canary.closedAt).toISOString(),
        outcomes: r.outcomes,
        setup_failures: r.setupFailures,
        seconds: Math.round(r.seconds),
        cases_per_s: Math.round(r.cases / r.seconds),
        cpus: cpus().length,
        date: new Date().toISOString(),
      }
      console.log(`fuzz ${JSON.stringify(summary)}`)
      if (OUT) appendFileSync(OUT, JSON.stringify(summary) + '\n')
      expect(r.crashed, `node exited (seed ${SEED}); last cases:\n${r.lastCases.join('\n')}\n${n.out.join('').slice(-3000)}`).toBe(false)
      expect(r.cases).toBe(PER_RUN)
      expect(exceptions, n.out.join('').slice(-3000)).toBe(0)
      const warnings = n.out.join('').split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-20).join('\n')
      expect(c.lost, `canary lost messages (closed at ${canary.closedAt ?? 'never'}); node warnings:\n${warnings}`).toBe(0)
      expect(c.sent).toBeGreaterThan(0)
      expect(canary.connected).toBe(true)
      expect((await connackOf(n.ports.mqtt)).code).toBe(0)
      expect((await fetch(`http://127.0.0.1:${n.ports.http}/healthz`)).status).toBe(200)
    },
    Math.max(60_000, PER_RUN * 50),
  )
})
