/**
 * Mutation fuzzer against real nodes (the built CLI), in memory and with
 * Redis, over TCP and WebSocket (test/helpers/fuzz): after a valid CONNECT
 * with a subscription and in-flight QoS 1/2 state in place, mutated packets
 * of every type. The node must never exit, no exception may escape a
 * client's handling, and a well-behaved QoS 1 client on the same node (same
 * transport; one per protocol level fuzzed) must lose nothing. MQTT 3.1.1 and
 * MQTT 5 sessions side by side (helpers/fuzz/packets-v5.ts for the v5 cases).
 *
 * `npm test` runs a few thousand cases with a fixed seed; the long run is
 * `npm run fuzz -- --cases 1000000 --protocol 3.1.1|5|both` (scripts/fuzz.mjs), which sets the
 * CULEX_FUZZ_* variables read here.
 */
import { appendFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { afterAll, describe, expect, it } from 'vitest'
import { Canary, connackOf, spawnNode, startRedis, stopAll, type SpawnedNode } from '../helpers/security-node.js'
import { protocolLevels, runFuzz } from '../helpers/fuzz/run.js'
import type { Transport } from '../helpers/fuzz/conn.js'

const env = process.env
const CASES = Number(env.CULEX_FUZZ_CASES ?? 2000)
// fixed in `npm test`, so that a failure there is the same on every run
const SEED = Number(env.CULEX_FUZZ_SEED ?? 20261130)
const PROTOCOL = env.CULEX_FUZZ_PROTOCOL ?? 'both'
const LEVELS = protocolLevels(PROTOCOL)
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
    `survives ${PER_RUN} mutated cases over %s (protocol ${PROTOCOL}, seed ${SEED}); the well-behaved QoS 1 clients lose nothing`,
    async (transport) => {
      if (!node || node.exited()) node = await start()
      const n = node
      const port = transport === 'tcp' ? n.ports.mqtt : n.ports.ws
      const url = transport === 'tcp' ? `mqtt://127.0.0.1:${port}` : `ws://127.0.0.1:${port}/mqtt`
      const canaries = await Promise.all(LEVELS.map((protocolVersion) => Canary.start(url, { protocolVersion })))
      const r = await runFuzz(
        { transport, port, alive: () => !n.exited() },
        {
          cases: PER_RUN,
          seed: SEED,
          workers: WORKERS,
          caseTimeoutMs: TIMEOUT_MS,
          maxPacketSize: MAX_PACKET,
          protocols: LEVELS,
          progressMs: 30_000,
          onProgress: (done, s) => console.log(`fuzz ${mode}-${transport}: ${done} cases, ${(done / s).toFixed(0)}/s`),
        },
      )
      // generous: on a loaded machine a QoS 1 round trip can take seconds; late is not lost
      const finished = await Promise.all(canaries.map((c) => c.finish(15_000)))
      const c = { sent: finished.reduce((n, f) => n + f.sent, 0), lost: finished.reduce((n, f) => n + f.lost, 0), ackedLost: finished.reduce((n, f) => n + f.ackedLost, 0) }
      const closedAt = canaries.map((k) => k.closedAt).find((t) => t !== undefined)
      const exceptions = n.exited() ? NaN : await clientErrors(n.ports.http, 'exception')
      const summary = {
        mode,
        transport,
        seed: SEED,
        protocol: PROTOCOL,
        cases: r.cases,
        cases_v311: r.byVersion[4],
        cases_v5: r.byVersion[5],
        crashes: r.crashed ? 1 : 0,
        exceptions,
        canary_sent: c.sent,
        canary_lost: c.lost,
        canary_acked_lost: c.ackedLost,
        canary_by_level: Object.fromEntries(LEVELS.map((l, i) => [l === 5 ? '5' : '3.1.1', { sent: finished[i]!.sent, lost: finished[i]!.lost }])),
        canary_closed_at: closedAt === undefined ? null : new Date(closedAt).toISOString(),
        outcomes: r.outcomes,
        setup_failures: r.setupFailures,
        seconds: Math.round(r.seconds),
        cases_per_s: Math.round(r.cases / r.seconds),
        cpus: cpus().length,
        date: new Date().toISOString(),
      }
      console.log(`fuzz ${JSON.stringify(summary)}`)
      if (OUT) appendFileSync(OUT, JSON.stringify(summary) + '\n')
      // the long run keeps the node's log and the last cases of a failed run next to its results
      const failed = r.crashed || exceptions !== 0 || c.lost > 0
      if (OUT && failed) writeFileSync(`${OUT}.${mode}-${transport}.log`, `${r.lastCases.join('\n')}\n${n.out.join('')}`)
      expect(r.crashed, `node exited (seed ${SEED}); last cases:\n${r.lastCases.join('\n')}\n${n.out.join('').slice(-3000)}`).toBe(false)
      expect(r.cases).toBe(PER_RUN)
      expect(exceptions, n.out.join('').slice(-3000)).toBe(0)
      const warnings = n.out.join('').split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-20).join('\n')
      expect(c.lost, `canary lost messages (closed at ${closedAt ?? 'never'}); node warnings:\n${warnings}`).toBe(0)
      for (const f of finished) expect(f.sent).toBeGreaterThan(0)
      for (const k of canaries) expect(k.connected).toBe(true)
      for (const l of LEVELS) expect(r.byVersion[l], `cases at protocol level ${l}`).toBeGreaterThan(0)
      expect((await connackOf(n.ports.mqtt)).code).toBe(0)
      expect((await fetch(`http://127.0.0.1:${n.ports.http}/healthz`)).status).toBe(200)
    },
    Math.max(60_000, PER_RUN * 50),
  )
})
