/** Runs one scenario by name. */
import type { ScenarioConfig } from '../options.js'
import type { ScenarioReport } from '../report/types.js'
import { runConnections } from './connections.js'
import { fanin } from './fanin.js'
import { fanout } from './fanout.js'
import { flood, floodObserver, FLOOD_WINDOW } from './flood.js'
import { latency } from './latency.js'
import { runMessageScenario } from './message-run.js'
import { throughput } from './throughput.js'
import { persistent } from './persistent.js'
import { shared } from './shared.js'
import { hex, newRunId } from './common.js'
import type { TopologyBuilder } from './topology.js'

const BUILDERS: Record<Exclude<ScenarioConfig['scenario'], 'connections'>, TopologyBuilder> = {
  throughput,
  persistent,
  fanout,
  fanin,
  latency,
  flood,
  shared,
}

export async function runScenario(cfg: ScenarioConfig): Promise<ScenarioReport> {
  if (cfg.scenario === 'connections') return runConnections(cfg)
  const prefix = `culex-bench/${hex(newRunId())}`
  if (cfg.scenario === 'flood') {
    const c = { ...cfg, window: FLOOD_WINDOW }
    return runMessageScenario(c, flood(c, prefix), floodObserver(c))
  }
  return runMessageScenario(cfg, BUILDERS[cfg.scenario](cfg, prefix))
}
