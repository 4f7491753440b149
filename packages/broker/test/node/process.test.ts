/**
 * The `culex start` process: bad config exits 2 naming the key; an unknown CULEX_* variable is a warning; SIGTERM (after drain_ms) exits 0
 * within the grace period, a repeated SIGTERM included, and one sent while the node starts.
 * Drain checks run inside drain_ms 3000 (generous for a loaded machine); each waits on what the
 * node shows (/readyz, its log), not on a sleep.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cliReady, closeClients, connect, runCli, waitFor, type CliRun } from '../helpers/node.js'
import { freePort, killAll, spawnProc } from '../helpers/cluster-procs.js'

const runs: CliRun[] = []
const cli = (args: string[], env: Record<string, string> = {}): CliRun => {
  const r = runCli(args, env)
  runs.push(r)
  return r
}
afterEach(async () => {
  await closeClients()
  for (const r of runs.splice(0)) if (r.child.exitCode === null) r.child.kill('SIGKILL')
  await killAll()
})
const free = ['--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0']

describe('culex start', () => {
  it('exits 2 naming the key for a port of 70000, before opening any port', async () => {
    const r = cli(['start', ...free, '--mqtt-port', '70000'])
    expect((await r.exit).code).toBe(2)
    expect(r.stderr.join('')).toMatch(/mqtt_port \(flag --mqtt-port.*70000/)
    expect(r.stdout.join('')).not.toContain('culex ready')
  })

  it('exits 2 for a bad environment value and for an unknown key in the config file', async () => {
    const env = cli(['start', ...free], { CULEX_REDIS_URL: 'http//nope' })
    expect((await env.exit).code).toBe(2)
    expect(env.stderr.join('')).toMatch(/redis_url \(environment variable CULEX_REDIS_URL/)

    const dir = mkdtempSync(join(tmpdir(), 'culex-cli-'))
    const f = join(dir, 'culex.yaml')
    writeFileSync(f, 'mqtt_port: 1883\nlisten_everywhere: true\n')
    const file = cli(['start', ...free, '--config', f])
    expect((await file.exit).code).toBe(2)
    expect(file.stderr.join('')).toMatch(/unknown key.*listen_everywhere/)
  })

  it('on SIGTERM turns not ready, disconnects clients and exits 0 within the grace period', async () => {
    const r = cli(['start', ...free, '--grace-period-ms', '3000'])
    const ports = await cliReady(r)
    expect((await fetch(`http://127.0.0.1:${ports.http}/readyz`)).status).toBe(200)
    const client = await connect(`mqtt://127.0.0.1:${ports.mqtt}`)
    let closed = false
    client.on('close', () => (closed = true))
    const t0 = Date.now()
    r.child.kill('SIGTERM')
    const { code } = await r.exit
    expect(code).toBe(0)
    expect(Date.now() - t0).toBeLessThan(3000)
    await waitFor(() => closed, 2000, 'client disconnected')
    expect(r.stdout.join('')).toContain('"msg":"shutting down"')
  })

  it('a SIGTERM while the node starts (its Redis not up yet) is acted on once it is up: not killed by the signal, exit 0', async () => {
    const port = await freePort()
    const r = cli(['start', ...free, '--redis-url', `redis://127.0.0.1:${port}`, '--grace-period-ms', '20000'])
    // startNode is under way: it logs each failed Redis connect
    await waitFor(() => r.stdout.join('').includes('redis link error'), 15_000, 'the node waiting for Redis')
    r.child.kill('SIGTERM')
    spawnProc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'])
    const exit = await r.exit
    expect(exit).toEqual({ code: 0, signal: null })
    const out = r.stdout.join('')
    expect(out).toContain('"msg":"culex ready"')
    expect(out).toContain('"msg":"shutting down"')
  })

  /** drain_ms of drainingNode: what the tests check during the drain has this long */
  const DRAIN_MS = 3000
  /** a CLI node with drain_ms DRAIN_MS and one client, sent SIGTERM, answering /readyz 503; closedAt() is when the client was closed (0: not yet) */
  async function drainingNode(): Promise<{ r: ReturnType<typeof cli>; client: Awaited<ReturnType<typeof connect>>; closedAt: () => number; t0: number }> {
    const r = cli(['start', ...free, '--drain-ms', String(DRAIN_MS), '--grace-period-ms', '3000'])
    const ports = await cliReady(r)
    const client = await connect(`mqtt://127.0.0.1:${ports.mqtt}`)
    let closedAt = 0
    client.on('close', () => (closedAt ||= Date.now()))
    const t0 = Date.now()
    r.child.kill('SIGTERM')
    await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.http}/readyz`)).status === 503, DRAIN_MS - 500, '/readyz 503')
    return { r, client, closedAt: () => closedAt, t0 }
  }

  it('with drain_ms, on SIGTERM answers /readyz 503 while it keeps its clients for drain_ms, then closes them; SIGINT does not drain', async () => {
    const { r, client, closedAt, t0 } = await drainingNode()
    // still connected and served while draining (a load balancer takes the node out meanwhile)
    await client.publishAsync('drain/t', 'x', { qos: 1 })
    expect(closedAt()).toBe(0)
    expect((await r.exit).code).toBe(0)
    expect(closedAt() - t0).toBeGreaterThanOrEqual(DRAIN_MS - 100)

    const r2 = cli(['start', ...free, '--drain-ms', '5000', '--grace-period-ms', '3000'])
    await cliReady(r2)
    const t1 = Date.now()
    r2.child.kill('SIGINT')
    expect((await r2.exit).code).toBe(0)
    expect(Date.now() - t1).toBeLessThan(3000)
  })

  it('a second SIGTERM while draining (a supervisor stopping the node once HAProxy took it out) neither kills it nor ends the drain early: clients kept for drain_ms, exit 0', async () => {
    const { r, client, closedAt, t0 } = await drainingNode()
    r.child.kill('SIGTERM')
    await waitFor(() => r.stdout.join('').includes('"msg":"already stopping"'), DRAIN_MS - 500, 'the second SIGTERM seen')
    await client.publishAsync('drain/t', 'x', { qos: 1 })
    expect(closedAt()).toBe(0)
    const exit = await r.exit
    expect(exit.code, `exit ${JSON.stringify(exit)}`).toBe(0)
    expect(closedAt() - t0).toBeGreaterThanOrEqual(DRAIN_MS - 100)
  })

  it('warns of a CULEX_* variable that is no setting (a typo), naming the one meant, and serves with the default', async () => {
    const r = cli(['start', ...free], { CULEX_MQTT_PROT: '1884' })
    await cliReady(r)
    let warn: { level: number; unknown_env: string[] } | undefined
    await waitFor(() => (warn = r.stdout.join('').split('\n').filter((l) => l.includes('unknown_env')).map((l) => JSON.parse(l))[0]) !== undefined, 5000, 'the warning')
    expect(warn!.level).toBe(40)
    expect(warn!.unknown_env).toEqual(['CULEX_MQTT_PROT is not a Culex setting and is ignored (did you mean CULEX_MQTT_PORT?)'])
    r.child.kill('SIGTERM')
    expect((await r.exit).code).toBe(0)
  })

  it('logs a JSON start-up line with version, node id, listeners and mode', async () => {
    const r = cli(['start', ...free, '--node-id', 'n-test'])
    await cliReady(r)
    const line = JSON.parse(r.stdout.join('').split('\n').find((l) => l.includes('culex ready'))!)
    expect(line).toMatchObject({ node_id: 'n-test', mode: 'memory', version: expect.any(String), level: 30 })
    expect(line.listeners).toMatchObject({ mqtt: expect.stringMatching(/^127\.0\.0\.1:\d+$/), ws: expect.stringMatching(/\/mqtt$/), http: expect.any(String) })
    r.child.kill('SIGTERM')
    expect((await r.exit).code).toBe(0)
  })
})
