/**
 * `culex cluster up` as a process manager: a node killed with kill -9 comes back with the same id
 * and ports, after a back-off that grows when it dies again soon, and each step is logged;
 * `culex cluster restart` (another process) drains each node (/readyz 503 while it still runs)
 * and refuses a second rolling restart while one runs.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { clusterUp, type UpCluster } from '../helpers/cluster-up.js'
import { killAll, waitFor } from '../helpers/cluster-procs.js'

let c: UpCluster
beforeAll(async () => {
  c = await clusterUp(2, ['--allow-anonymous', 'true', '--health-check-ms', '300'])
})
afterAll(async () => {
  await c?.down()
  await killAll()
})

const readyz = async (port: number): Promise<number> => {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).status
  } catch {
    return 0
  }
}

it('a node killed with kill -9 is restarted with the same id and ports, with a growing back-off, logged', async () => {
  const before = c.state().nodes[0]!
  for (const [n, delay] of [[1, '0.5'], [2, '1.0']] as const) {
    const pid = c.state().nodes[0]!.pid
    process.kill(pid, 'SIGKILL')
    await waitFor(() => c.proc.text().includes(`node culex-1 exited (SIGKILL); restarting in ${delay} s (restart ${n};`), 5000, `exit ${n} logged`)
    await waitFor(() => (c.proc.text().match(/node culex-1 restarted \(pid \d+/g) ?? []).length === n, 20_000, `restart ${n} logged`)
    const after = c.state().nodes[0]!
    expect(after.pid).not.toBe(pid)
    expect(after).toMatchObject({ id: 'culex-1', mqtt: before.mqtt, ws: before.ws, http: before.http, restarts: n })
    expect(await readyz(after.http)).toBe(200)
  }
  // and it takes MQTT clients on its old port again (the one HAProxy's config names)
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${before.mqtt}`, { reconnectPeriod: 0 })
  await client.endAsync()
}, 45_000)

it('culex cluster restart drains each node first (/readyz 503 while it still runs) and refuses a second one meanwhile', async () => {
  const first = c.state().nodes[0]!
  const restart = c.cli(['cluster', 'restart', '--dir', c.dir])
  // the first node answers 503 while its process still runs: HAProxy takes it out before its clients go
  await waitFor(async () => (await readyz(first.http)) === 503, 10_000, 'culex-1 draining')
  expect(c.state().nodes[0]!.pid).toBe(first.pid)
  const second = c.cli(['cluster', 'restart', '--dir', c.dir])
  expect((await second.exited).code).toBe(1)
  expect(second.text()).toMatch(/already running/)
  const { code } = await restart.exited
  expect(code, restart.text()).toBe(0)
  expect(restart.text()).toMatch(/\[2\/2\] culex-2: back/)
  for (const n of c.state().nodes) expect(await readyz(n.http)).toBe(200)
  // the supervisor took the planned exits for planned ones: no restart of its own on top
  expect(c.proc.text()).not.toMatch(/culex-2 exited/)
  expect(c.state().nodes[1]!.restarts).toBe(0)
}, 45_000)

it('culex cluster restart without a running cluster says so', async () => {
  const p = c.cli(['cluster', 'restart', '--dir', `${c.dir}/nowhere`])
  expect((await p.exited).code).toBe(1)
  expect(p.err.join('')).toMatch(/no running cluster/)
})
