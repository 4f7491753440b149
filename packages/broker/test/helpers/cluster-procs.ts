/**
 * Real processes for the cluster tests: redis-server on a free loopback port,
 * Culex nodes spawned through the built CLI (port 0 everywhere, ports read
 * from the `culex ready` log line), and the `culex cluster up` supervisor.
 * Every process started here is registered and killed by `killAll()`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

const children = new Set<ChildProcess>()
const dirs: string[] = []

import { freePort } from './ports.js'
import { redisPing } from '../../src/local-cluster/procs.js'
import { CLI, sleep, waitFor } from './wait.js'
export { CLI, sleep, waitFor }
export { freePort }

export function tempDir(prefix = 'culex-cluster-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(d)
  return d
}


export interface Proc {
  child: ChildProcess
  out: string[]
  err: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** all stdout so far */
  text(): string
}

export function spawnProc(cmd: string, args: string[], env: Record<string, string> = {}, cwd?: string): Proc {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd })
  children.add(child)
  const out: string[] = []
  const err: string[] = []
  child.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => err.push(d))
  const exited = once(child, 'exit').then(([code, signal]) => {
    children.delete(child)
    return { code: code as number | null, signal: signal as NodeJS.Signals | null }
  })
  return { child, out, err, exited, text: () => out.join('') }
}

/** SIGKILL every process the tests started, then remove temp folders */
export async function killAll(): Promise<void> {
  const waits: Promise<unknown>[] = []
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      waits.push(once(c, 'exit'))
      c.kill('SIGKILL')
    }
  }
  await Promise.all(waits)
  children.clear()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

// ---- redis -----------------------------------------------------------------

export interface TestRedis {
  port: number
  url: string
  dir: string
  proc: Proc
  /** SIGKILL (data kept by AOF, fsync always) */
  kill(): Promise<void>
  /** start it again on the same port and dir (its AOF), with `extra` redis-server arguments; resolves once it answers PING (loaded) */
  restart(extra?: string[]): Promise<void>
  stop(): Promise<void>
}


export async function startRedis(opts: { aof?: boolean; debugCommand?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort()
  const dir = tempDir('culex-redis-')
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.aof ? 'yes' : 'no', '--appendfsync', 'always', '--daemonize', 'no', '--loglevel', 'warning',
    ...(opts.debugCommand ? ['--enable-debug-command', 'yes'] : []),
  ]
  const start = async (extra: string[] = []): Promise<Proc> => {
    const p = spawnProc('redis-server', [...args, ...extra])
    await waitFor(async () => {
      if (p.child.exitCode !== null) throw new Error(`redis-server on ${port} exited ${p.child.exitCode}: ${p.text().slice(-400)}`)
      return redisPing('127.0.0.1', port)
    }, 10_000, `redis-server on ${port}`)
    return p
  }
  const r: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    proc: await start(),
    async kill() {
      r.proc.child.kill('SIGKILL')
      await r.proc.exited
    },
    async restart(extra) {
      r.proc = await start(extra)
    },
    async stop() {
      if (r.proc.child.exitCode === null) {
        r.proc.child.kill('SIGTERM')
        await r.proc.exited
      }
    },
  }
  return r
}

// ---- culex nodes -----------------------------------------------------------

export interface TestNode {
  id: string
  proc: Proc
  mqtt: number
  ws: number
  http: number
  url: string
  /** parsed JSON log lines so far */
  logs(): Array<Record<string, unknown>>
  readyz(): Promise<number>
  kill9(): Promise<void>
  stop(): Promise<void>
}

export function logLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue
    try {
      out.push(JSON.parse(l) as Record<string, unknown>)
    } catch {
      /* partial line */
    }
  }
  return out
}

/** short heartbeat and sweep so will tests stay quick */
export const FAST = ['--heartbeat-interval-ms', '300', '--will-sweep-interval-ms', '200']

/** `redis`: a redis:// URL, or the flags that name Redis (e.g. --redis-sentinels ... --redis-master-name ...) */
export async function startNode(redis: string | string[], id: string, extra: string[] = []): Promise<TestNode> {
  const args = [
    CLI, 'start', ...(Array.isArray(redis) ? redis : ['--redis-url', redis]), '--node-id', id, '--host', '127.0.0.1',
    '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', '--log-level', 'debug', '--grace-period-ms', '3000', '--allow-anonymous', 'true', ...extra,
  ]
  const proc = spawnProc(process.execPath, args)
  let ready: Record<string, unknown> | undefined
  // the `culex ready` line, looked for in what came since the last look (a node logs at debug
  // here); generous: four nodes starting at once on a loaded 2-core machine took over 15 s
  let from = 0
  await waitFor(
    () => {
      const text = proc.text()
      const at = text.indexOf('"culex ready"', from)
      // not there: the next look starts where this one ended (a marker cut in two included); there:
      // its line, once complete, parses
      if (at < 0) from = Math.max(0, text.length - 20)
      else ready = logLines(text.slice(text.lastIndexOf('\n', at) + 1)).find((l) => l.msg === 'culex ready')
      if (!ready && proc.child.exitCode !== null) throw new Error(`node ${id} exited: ${proc.err.join('')}`)
      return ready !== undefined
    },
    45_000,
    `node ${id} ready`,
  )
  const listeners = ready!.listeners as Record<string, string>
  const port = (s: string): number => Number(/:(\d+)/.exec(s)![1])
  const node: TestNode = {
    id,
    proc,
    mqtt: port(listeners.mqtt!),
    ws: port(listeners.ws!),
    http: port(listeners.http!),
    url: `mqtt://127.0.0.1:${port(listeners.mqtt!)}`,
    logs: () => logLines(proc.text()),
    readyz: async () => {
      try {
        return (await fetch(`http://127.0.0.1:${node.http}/readyz`)).status
      } catch {
        return 0
      }
    },
    async kill9() {
      proc.child.kill('SIGKILL')
      await proc.exited
    },
    async stop() {
      if (proc.child.exitCode === null) {
        proc.child.kill('SIGTERM')
        await proc.exited
      }
    },
  }
  await waitFor(async () => (await node.readyz()) === 200, 30_000, `node ${id} /readyz 200`)
  return node
}
