/** The Grafana dashboard (ops/grafana/culex.json) charts only metrics a node exports, per node. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../helpers/cluster-procs.js'
import { useTestNode } from '../helpers/node.js'

const t = useTestNode()

interface Panel {
  title: string
  type: string
  targets: Array<{ expr: string }>
}

describe('Grafana dashboard', () => {
  it('every query names metrics the node exports, and the per-node panels group by node', async () => {
    const dash = JSON.parse(readFileSync(join(REPO_ROOT, 'ops', 'grafana', 'culex.json'), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: Array<{ name: string }> } }
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'node'])
    const exported = await (await fetch(`${t.ops}/metrics`)).text()
    const exprs = dash.panels.flatMap((p) => p.targets.map((x) => x.expr))
    const names = new Set(exprs.flatMap((e) => e.match(/\b(?:culex|process)_[a-z_]+/g) ?? []))
    for (const wanted of ['culex_messages_received_total', 'culex_messages_delivered_total', 'culex_messages_dropped_total', 'culex_queued_deliveries', 'culex_clients_connected', 'culex_auth_failures_total']) {
      expect(names).toContain(wanted)
    }
    for (const name of names) expect(exported, name).toContain(`# TYPE ${name} `)
    for (const p of dash.panels.filter((x) => x.type === 'timeseries' && x.title.includes('per node'))) {
      for (const target of p.targets) expect(target.expr, p.title).toMatch(/by \(node/)
    }
  })
})
