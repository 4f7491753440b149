/** --workers N: the clients of a message scenario are dealt out over the generator threads. */
import { describe, expect, it } from 'vitest'
import { DEFAULTS, type ScenarioConfig } from '../src/options.js'
import { fanin } from '../src/scenarios/fanin.js'
import { fanout } from '../src/scenarios/fanout.js'
import { buildPlans } from '../src/scenarios/message-run.js'
import { throughput } from '../src/scenarios/throughput.js'
import type { TopologyBuilder } from '../src/scenarios/topology.js'

const cfg = (o: Partial<ScenarioConfig>): ScenarioConfig =>
  ({ ...DEFAULTS, scenario: 'throughput', pubUrls: ['mqtt://127.0.0.1:1'], subUrls: ['mqtt://127.0.0.1:1'], metricsUrls: [], brokerPids: [], insecure: false, progress: false, ...o }) as ScenarioConfig

/** per thread: [publishers, subscribers] */
function spread(build: TopologyBuilder, c: ScenarioConfig, threads: number): Array<[number, number]> {
  return buildPlans(c, build(c, 'x'), 1, threads).map((p) => [p.publishers.length, p.subscribers.length])
}

describe('generator threads (--workers 2)', () => {
  it('throughput: each thread drives half the pairs, publisher and subscriber of a pair together', () => {
    const c = cfg({ pairs: 4 })
    expect(spread(throughput, c, 2)).toEqual([[2, 2], [2, 2]])
    const plans = buildPlans(c, throughput(c, 'x'), 1, 2)
    for (const p of plans) expect(p.publishers.map((x) => x.topic)).toEqual(p.subscribers.map((x) => x.filter))
  })

  it('fanout: the subscribers, which do nearly all the reading, are split between the threads', () => {
    expect(spread(fanout, cfg({ scenario: 'fanout', publishers: 1, subscribers: 20 }), 2)).toEqual([[1, 10], [0, 10]])
  })

  it('fanin: the publishers are split; the one subscriber is on the first thread', () => {
    expect(spread(fanin, cfg({ scenario: 'fanin', publishers: 10, subscribers: 1 }), 2)).toEqual([[5, 1], [5, 0]])
  })
})
