/** `culex cluster up` as the tests run it: free loopback ports, a temp folder, stopped (and reaped) afterwards. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, freePort, spawnProc, tempDir, waitFor, type Proc } from './cluster-procs.js'

export interface UpCluster {
  dir: string
  proc: Proc
  ports: { mqtt: number; tls: number; wss: number; stats: number; api: number }
  state(): ClusterJson
  /** run another CLI command in the cluster folder */
  cli(args: string[], env?: Record<string, string>): Proc
  /** `culex cluster down`, then SIGKILL whatever is left */
  down(): Promise<void>
}

export interface ClusterJson {
  pid: number
  status: string
  redis_url: string
  redis: { pid: number; port: number }
  redis_ha?: { master_name: string; sentinels: number[]; procs: Array<{ name: string; kind: string; port: number; pid: number }> }
  haproxy: { pid: number; config: string }
  nodes: Array<{ id: string; pid: number; mqtt: number; ws: number; http: number; log: string; restarts?: number }>
  certs: { ca: string; pem: string }
  admin_token_file?: string
}

/** `culex cluster up` in a temp folder; anonymous clients allowed unless `extra` says otherwise */
export async function clusterUp(nodes: number, extra: string[] = ['--allow-anonymous', 'true'], dir = tempDir('culex-up-')): Promise<UpCluster> {
  const ports = { mqtt: await freePort(), tls: await freePort(), wss: await freePort(), stats: await freePort(), api: await freePort() }
  const proc = spawnProc(process.execPath, [
    CLI, 'cluster', 'up', '--nodes', String(nodes),
    '--mqtt-port', String(ports.mqtt), '--tls-port', String(ports.tls), '--wss-port', String(ports.wss), '--stats-port', String(ports.stats), '--api-port', String(ports.api),
    '--dir', dir, ...extra,
  ])
  const state = (): ClusterJson => JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterJson
  // the current pids (the supervisor restarts processes that die: read again before killing)
  let pids: number[] = []
  const readPids = (): void => {
    try {
      const s = state()
      pids = [s.haproxy?.pid, ...s.nodes.map((n) => n.pid), s.redis.pid, ...(s.redis_ha?.procs ?? []).map((p) => p.pid)].filter((p): p is number => !!p)
    } catch {
      /* not written yet */
    }
  }
  const killPids = (): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
  }
  try {
    await waitFor(
      () => {
        readPids()
        if (proc.child.exitCode !== null) throw new Error(`cluster up exited ${proc.child.exitCode}: ${proc.err.join('')}${proc.text()}`)
        return proc.text().includes('cluster ready')
      },
      90_000,
      'cluster ready',
    )
  } catch (err) {
    proc.child.kill('SIGKILL')
    killPids()
    throw err
  }
  readPids()
  return {
    dir,
    proc,
    ports,
    state,
    cli: (args, env = {}) => spawnProc(process.execPath, [CLI, ...args], env),
    async down() {
      readPids()
      const down = spawnProc(process.execPath, [CLI, 'cluster', 'down', '--dir', dir])
      await Promise.race([down.exited, new Promise((r) => setTimeout(r, 45_000))])
      killPids()
    },
  }
}
