/**
 * The three modes every conformance file runs in: one node in memory, one node on Redis, and two
 * nodes on Redis. Nodes are shared by the tests of a file (started once per mode). A test that
 * involves a session or a retained message connects its first client with `port(0)` and its later
 * one with `port(1)`: in the two-node mode the client moves to the other node, in the one-node modes
 * it is the same node.
 */
import { afterAll, afterEach, beforeAll, describe } from 'vitest'
import { startTestNode } from '../helpers/node.js'
import { killAll, startRedis, type TestRedis } from '../helpers/cluster-procs.js'
import type { CulexNode } from '../../src/main.js'
import { Raw, destroyAll } from './raw.js'

export const MODES = ['memory', 'redis', 'two-nodes'] as const
export type ModeName = (typeof MODES)[number]

export interface Mode {
  readonly name: ModeName
  readonly nodes: CulexNode[]
  /** MQTT port of node i (0 or 1); the same node for both in the one-node modes */
  port(i?: 0 | 1): number
  /** a raw client on node i, at the suite's protocol level unless `version` says otherwise */
  raw(i?: 0 | 1, version?: 4 | 5): Promise<Raw>
  /** a client id unique in this run */
  id(name: string): string
}

let seq = 0

/**
 * run `body` once per mode, in a describe block named after the mode; `version` is the protocol
 * level of the suite's raw clients (4: test/conformance, 5: test/conformance-v5)
 */
export function forEachMode(body: (m: Mode) => void, overrides: Record<string, unknown> = {}, modes: readonly ModeName[] = MODES, version: 4 | 5 = 4): void {
  for (const name of modes) {
    describe(name, () => {
      const nodes: CulexNode[] = []
      let redis: TestRedis | undefined
      const m: Mode = {
        name,
        nodes,
        port: (i = 0) => nodes[Math.min(i, nodes.length - 1)]!.ports.mqtt,
        raw: (i = 0, v = version) => Raw.open(m.port(i), v),
        id: (n) => `${n}-${name}-${++seq}`,
      }
      beforeAll(async () => {
        if (name === 'memory') {
          nodes.push(await startTestNode(overrides))
          return
        }
        redis = await startRedis()
        const count = name === 'two-nodes' ? 2 : 1
        for (let i = 0; i < count; i++) {
          nodes.push(await startTestNode({ redis_url: redis.url, node_id: `conf-${name}-${i}`, allow_anonymous: true, heartbeat_interval_ms: 300, will_sweep_interval_ms: 200, ...overrides }))
        }
      })
      afterEach(() => destroyAll())
      afterAll(async () => {
        destroyAll()
        await Promise.all(nodes.splice(0).map((n) => n.close()))
        if (redis) await killAll()
      })
      body(m)
    })
  }
}
