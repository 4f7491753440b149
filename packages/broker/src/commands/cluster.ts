/**
 * `culex cluster up|down|status`: a local cluster (redis-server + N nodes +
 * HAProxy, see local-cluster/up.ts) and the live node list of any cluster.
 */
import type { Command } from 'commander'
import { connectRedis, parseTarget } from '../cluster/redis-connect.js'
import { clusterUp, ClusterUpError } from '../local-cluster/up.js'
import { clusterDown } from '../local-cluster/down.js'
import { DEFAULT_DIR, alive, clusterRedisUrl, readState } from '../local-cluster/state.js'
import { controlSocket, requestRestart } from '../local-cluster/control.js'
import { listNodes, clientTotal } from '../cluster/registry.js'
import { listGroups } from '../shared/redis-store.js'
import { primaryPort } from '../local-cluster/ha-redis.js'
import type { ClusterState } from '../local-cluster/state.js'

/** a local cluster under Sentinel: which server is the primary now, which processes run */
async function haLine(ha: NonNullable<ClusterState['redis_ha']>): Promise<string> {
  const primary = await primaryPort({ primary: 0, replicas: [], sentinels: ha.sentinels })
  const up = (kind: string): string => {
    const all = ha.procs.filter((p) => p.kind === kind)
    return `${all.filter((p) => alive(p.pid)).length} of ${all.length}`
  }
  return `redis under Sentinel (${ha.master_name}): primary ${primary ? `127.0.0.1:${primary}` : 'unknown (no sentinel answers)'}; redis-server ${up('redis')} running, redis-sentinel ${up('sentinel')} running`
}

const int = (name: string) => (v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a whole number 0-65535, got "${v}"`)
  return n
}
const boolArg = (v: string): boolean => {
  const s = v.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(s)) return true
  if (['false', '0', 'no', 'off'].includes(s)) return false
  throw new Error(`expected true or false, got "${v}"`)
}

export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('run a local Culex cluster, or show the nodes of one')

  cluster
    .command('up')
    .description('start redis-server, N nodes and HAProxy in the foreground; Ctrl-C (or `culex cluster down`) stops them')
    .option('--nodes <n>', 'number of Culex nodes', int('--nodes'), 3)
    .option('--mqtt-port <port>', 'HAProxy: MQTT over TCP', int('--mqtt-port'), 1883)
    .option('--tls-port <port>', 'HAProxy: MQTT over TLS', int('--tls-port'), 8883)
    .option('--wss-port <port>', 'HAProxy: MQTT over secure WebSocket (path /mqtt)', int('--wss-port'), 8443)
    .option('--stats-port <port>', 'HAProxy stats page', int('--stats-port'), 8404)
    .option('--api-port <port>', 'HAProxy: admin REST API and dashboard over HTTPS', int('--api-port'), 9443)
    .option('--redis-port <port>', 'redis-server port (default: any free port)', int('--redis-port'))
    .option('--redis-replicas <n>', 'high availability: a Redis primary with N replicas under three redis-sentinel processes, instead of one redis-server', int('--redis-replicas'), 0)
    .option('--sentinel-down-after-ms <ms>', 'with --redis-replicas: Sentinel down-after-milliseconds (failover-timeout is 5 x it, at least 20 s)', int('--sentinel-down-after-ms'), 2000)
    .option('--bind <address>', 'address HAProxy listens on (0.0.0.0 to let other machines in)', '127.0.0.1')
    .option('--dir <dir>', 'folder for state, Redis data (AOF), certificates and logs', DEFAULT_DIR)
    .option('--cert-host <name>', 'extra host name or address for the server certificate (made on first use)')
    .option(
      '--allow-anonymous <bool>',
      'let clients connect without a username (default: the node default, which refuses them in cluster mode: add a user with `culex user add`)',
      boolArg,
    )
    .option('--node-config <file>', 'config file every node starts with (culex start --config)')
    .option('--keepalive-max-s <s>', 'MQTT keepalive cap of the nodes (a longer or zero keepalive is held to it); HAProxy timeouts are twice it', int('--keepalive-max-s'), 300)
    .option('--log-level <level>', 'log level of the nodes', 'info')
    .option('--health-check-ms <ms>', 'HAProxy health check interval; a stopping node drains (/readyz 503, clients kept) for 3 of them', int('--health-check-ms'), 1000)
    .option('--restart-delay-ms <ms>', 'first restart delay of a node, Redis or HAProxy that died; doubles on each quick failure, up to 30 s', int('--restart-delay-ms'), 500)
    .action(async (opts: Record<string, unknown>) => {
      const bind = opts.bind as string
      const out = (line: string): void => void process.stdout.write(`${line}\n`)
      let running
      try {
        running = await clusterUp({
          nodes: opts.nodes as number,
          dir: opts.dir as string,
          bind,
          mqttPort: opts.mqttPort as number,
          tlsPort: opts.tlsPort as number,
          wssPort: opts.wssPort as number,
          statsPort: opts.statsPort as number,
          apiPort: opts.apiPort as number,
          redisPort: opts.redisPort as number | undefined,
          certHost: opts.certHost as string | undefined,
          allowAnonymous: opts.allowAnonymous as boolean | undefined,
          nodeConfig: opts.nodeConfig as string | undefined,
          keepaliveMaxS: opts.keepaliveMaxS as number,
          logLevel: opts.logLevel as string,
          healthCheckMs: Math.max(100, opts.healthCheckMs as number),
          restartDelayMs: Math.max(100, opts.restartDelayMs as number),
          redisReplicas: opts.redisReplicas as number,
          sentinelDownAfterMs: Math.max(100, opts.sentinelDownAfterMs as number),
          out,
        })
      } catch (err) {
        process.stderr.write(`culex cluster up: ${(err as Error).message}\n`)
        process.exit(err instanceof ClusterUpError ? 1 : 2)
      }
      let signals = 0
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
        process.on(sig, () => {
          // the first signal stops gracefully, a second one kills everything at once
          if (++signals === 1) void running.stop(sig)
          else {
            running.kill()
            out('culex cluster: killed')
            process.exit(1)
          }
        })
      }
      await running.stopped
      process.exit(0)
    })

  cluster
    .command('down')
    .description('stop the cluster `culex cluster up` runs from --dir')
    .option('--dir <dir>', 'the folder given to `culex cluster up`', DEFAULT_DIR)
    .action(async (opts: { dir: string }) => {
      const out = (line: string): void => void process.stdout.write(`${line}\n`)
      const found = await clusterDown(opts.dir, out)
      process.exit(found ? 0 : 1)
    })

  cluster
    .command('restart')
    .description('rolling restart of the cluster `culex cluster up` runs from --dir: one node at a time, drained first')
    .option('--dir <dir>', 'the folder given to `culex cluster up`', DEFAULT_DIR)
    .action(async (opts: { dir: string }) => {
      const s = readState(opts.dir)
      if (!s || !alive(s.pid)) {
        process.stderr.write(`culex cluster restart: no running cluster in ${opts.dir} (start one with: culex cluster up --dir ${opts.dir})\n`)
        process.exit(1)
      }
      // the supervisor owns the node processes: it restarts them, so it never starts one twice
      const ok = await requestRestart(opts.dir, (line) => void process.stdout.write(`culex cluster restart: ${line}\n`)).catch((err: Error) => {
        process.stderr.write(`culex cluster restart: cannot reach the supervisor (pid ${s.pid}) on ${controlSocket(opts.dir)}: ${err.message}\n`)
        return false
      })
      process.exit(ok ? 0 : 1)
    })

  cluster
    .command('status')
    .description('live nodes of a cluster and their client counts')
    .option('--redis <url>', 'Redis URL of the cluster, or redis-sentinel://host:port,.../master-name (default: CULEX_REDIS_URL, else the cluster in --dir)')
    .option('--dir <dir>', 'folder of a `culex cluster up` cluster', DEFAULT_DIR)
    .option('--json', 'print JSON')
    .action(async (opts: { redis?: string; dir: string; json?: boolean }) => {
      const url = opts.redis ?? process.env.CULEX_REDIS_URL ?? clusterRedisUrl(opts.dir)
      if (!url) {
        process.stderr.write(`culex cluster status: no Redis URL: pass --redis redis://host:port, set CULEX_REDIS_URL, or run it where \`culex cluster up\` runs (--dir ${opts.dir})\n`)
        process.exit(2)
      }
      const db = connectRedis(parseTarget(url), { lazy: true, failFast: true })
      db.on('error', () => {})
      try {
        await db.connect()
        const nodes = await listNodes(db)
        const live = nodes.filter((n) => n.live)
        // a client that moved is counted once, wherever it is now
        const clients = await clientTotal(db, live.map((n) => n.id))
        if (opts.json) {
          // shared subscription groups (shared/redis-store.ts): members with node, QoS, online; queued messages
          const groups = await listGroups(db)
          process.stdout.write(`${JSON.stringify({ redis: url, clients, nodes, groups }, null, 2)}\n`)
        } else {
          const rows = [['NODE', 'STATE', 'CLIENTS', 'MQTT', 'WS', 'HTTP', 'PID', 'UP', 'VERSION']]
          for (const n of nodes) {
            const at = (k: string): string => (n.info[`${k}_port`] ? `${n.info.host ?? ''}:${n.info[`${k}_port`]}` : '-')
            const up = n.info.started ? `${Math.round((Date.now() - Number(n.info.started)) / 1000)}s` : '-'
            rows.push([n.id, n.state === 'dead' ? `dead ${Math.round(n.silentMs / 1000)}s` : n.state, n.live ? String(n.clients) : '-', at('mqtt'), at('ws'), at('http'), n.info.pid ?? '-', up, n.info.version ?? '-'])
          }
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
          process.stdout.write(`cluster at ${url}: ${live.length} live node${live.length === 1 ? '' : 's'}, ${clients} client${clients === 1 ? '' : 's'}\n`)
          const ha = opts.redis || process.env.CULEX_REDIS_URL ? undefined : readState(opts.dir)?.redis_ha
          if (ha) process.stdout.write(`${await haLine(ha)}\n`)
          for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`)
        }
        db.disconnect()
        process.exit(0)
      } catch (err) {
        db.disconnect()
        process.stderr.write(`culex cluster status: cannot read the cluster at ${url}: ${(err as Error).message}\n`)
        process.exit(1)
      }
    })
}
