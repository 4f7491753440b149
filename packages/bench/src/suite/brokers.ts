/**
 * The suite's targets, each started and stopped by the suite itself:
 * Mosquitto, one Culex node, a two-node Culex cluster on Redis (publishers on
 * one node, subscribers on the other) and `culex cluster up` behind HAProxy.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { WatchedProcess } from '../options.js'
import { pathToFileURL } from 'node:url'
import { GC_DIR_ENV, GC_PRELOAD } from '../heap.js'
import { Managed } from './process.js'
import { freePorts, waitForHttpOk, waitForPort, waitForRedis } from './ports.js'

export interface SuiteContext {
  brokerCli: string
  mosquittoBin: string
  redisBin: string
  tmpRoot: string
  /** extra lines for the Mosquitto configuration file */
  mosquittoConf: string[]
}

export interface StartedTarget {
  pubUrls: string[]
  subUrls: string[]
  brokerPids: number[]
  metricsUrls: string[]
  /** the processes it started, watched by the flood scenario (peak RSS, CPU after the load) */
  processes: WatchedProcess[]
  /** MQTT over WebSocket URLs, where the target has them */
  wsUrls?: string[]
  /** where its Culex nodes answer GC requests (../heap.ts), for the heap per idle connection */
  gcDir?: string
  stop(): Promise<void>
}

export interface TargetDef {
  name: string
  description: string
  start(ctx: SuiteContext): Promise<StartedTarget>
}

/** Thrown when a target cannot run here; the suite reports it as skipped, not failed. */
export class SkipTarget extends Error {}

const READY_MS = 30_000

/**
 * Culex settings for benchmarking, passed as environment (CULEX_* variables):
 * anonymous clients (cluster mode otherwise requires users), and no per-address
 * connect rate limit or connection cap, which would bound the connections
 * scenario (all load comes from 127.0.0.1). Everything else keeps its default.
 */
export const CULEX_BENCH_ENV: Record<string, string> = {
  CULEX_ALLOW_ANONYMOUS: 'true',
  CULEX_MAX_CONNECTS_PER_S_PER_IP: '0',
  CULEX_MAX_CONNECTIONS: '0',
}
/**
 * ... and suite/gc-preload.js in every node (through NODE_OPTIONS, which `culex cluster up` passes on
 * to the nodes it starts): a SIGUSR2 handler that runs a full GC for the heap reading of the
 * connections scenario, nothing on the message path.
 */
function culexEnv(gcDir: string): NodeJS.ProcessEnv {
  // not built: no heap figure, rather than nodes that cannot start
  if (!existsSync(GC_PRELOAD)) return { ...process.env, ...CULEX_BENCH_ENV }
  const preload = `--import=${pathToFileURL(GC_PRELOAD).href}`
  const nodeOptions = [process.env.NODE_OPTIONS, preload].filter(Boolean).join(' ')
  return { ...process.env, ...CULEX_BENCH_ENV, [GC_DIR_ENV]: gcDir, NODE_OPTIONS: nodeOptions }
}
const gcDirIn = (ctx: SuiteContext): string => mkdtempSync(path.join(ctx.tmpRoot, 'gc-'))

async function ready(m: Managed, wait: () => Promise<void>): Promise<void> {
  try {
    await wait()
  } catch (e) {
    await m.stop('SIGKILL', 2000)
    throw new Error(`${m.name}: ${(e as Error).message}\n${m.output()}`)
  }
}

/** Whether `bin` can be run: a path that exists, or a name found on PATH. */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin']

/** the full path of `bin`: PATH first, then the sbin folders Debian installs mosquitto in (not on a user's PATH) */
export function findBin(bin: string): string {
  if (bin.includes('/')) return bin
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), ...SBIN]) {
    if (dir && existsSync(path.join(dir, bin))) return path.join(dir, bin)
  }
  return bin
}

export function onPath(bin: string): boolean {
  return existsSync(findBin(bin)) && findBin(bin).includes('/')
}

function requireBin(bin: string): void {
  if (!onPath(bin)) throw new SkipTarget(`${bin} not found on PATH`)
}

function requireCli(ctx: SuiteContext): void {
  if (!existsSync(ctx.brokerCli)) throw new SkipTarget(`${ctx.brokerCli} not found (run npm run build)`)
}

async function startNode(ctx: SuiteContext, name: string, extra: string[], gcDir: string) {
  const [mqtt, ws, http] = (await freePorts(3)) as [number, number, number]
  const args = [ctx.brokerCli, 'start', '--host', '127.0.0.1', '--mqtt-port', `${mqtt}`, '--ws-port', `${ws}`]
  args.push('--http-port', `${http}`, '--log-level', 'warn', ...extra)
  const m = new Managed(name, process.execPath, args, { env: culexEnv(gcDir) })
  await ready(m, () => waitForHttpOk(`http://127.0.0.1:${http}/readyz`, READY_MS, m.alive))
  return { m, url: `mqtt://127.0.0.1:${mqtt}`, ws: `ws://127.0.0.1:${ws}/mqtt`, metrics: `http://127.0.0.1:${http}/metrics` }
}

async function startRedis(ctx: SuiteContext): Promise<{ m: Managed; url: string }> {
  const [port] = (await freePorts(1)) as [number]
  const m = new Managed('redis-server', ctx.redisBin, ['--save', '', '--appendonly', 'no', '--port', `${port}`, '--bind', '127.0.0.1'])
  await ready(m, () => waitForRedis(port, READY_MS, m.alive))
  return { m, url: `redis://127.0.0.1:${port}` }
}

export const mosquitto: TargetDef = {
  name: 'mosquitto',
  description: 'Mosquitto from PATH, one process, default settings (listener on 127.0.0.1, anonymous)',
  async start(ctx) {
    requireBin(ctx.mosquittoBin)
    const [port] = (await freePorts(1)) as [number]
    const dir = mkdtempSync(path.join(ctx.tmpRoot, 'mosquitto-'))
    const conf = path.join(dir, 'mosquitto.conf')
    writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', ...ctx.mosquittoConf, ''].join('\n'))
    const m = new Managed('mosquitto', ctx.mosquittoBin, ['-c', conf])
    await ready(m, () => waitForPort(port, READY_MS, m.alive))
    const url = `mqtt://127.0.0.1:${port}`
    return { pubUrls: [url], subUrls: [url], brokerPids: [m.pid], metricsUrls: [], processes: [{ name: 'mosquitto', pid: m.pid }], stop: () => m.stop() }
  },
}

export const culexNode: TargetDef = {
  name: 'culex-1node',
  description: 'one Culex node, in memory (no Redis); anonymous allowed, no connect rate limit or connection cap',
  async start(ctx) {
    requireCli(ctx)
    const gcDir = gcDirIn(ctx)
    const n = await startNode(ctx, 'culex node', [], gcDir)
    const processes = [{ name: 'culex node', pid: n.m.pid }]
    return { pubUrls: [n.url], subUrls: [n.url], brokerPids: [], metricsUrls: [n.metrics], processes, wsUrls: [n.ws], gcDir, stop: () => n.m.stop() }
  },
}

export const culexCluster2: TargetDef = {
  name: 'culex-2nodes',
  description: 'two Culex nodes on one Redis; publishers on node A, subscribers on node B (settings as culex-1node)',
  async start(ctx) {
    requireCli(ctx)
    requireBin(ctx.redisBin)
    const redis = await startRedis(ctx)
    const gcDir = gcDirIn(ctx)
    const nodes: Array<Awaited<ReturnType<typeof startNode>>> = []
    const stop = async (): Promise<void> => {
      await Promise.all(nodes.map((n) => n.m.stop()))
      await redis.m.stop()
    }
    try {
      nodes.push(await startNode(ctx, 'culex node A', ['--redis-url', redis.url, '--node-id', 'bench-a'], gcDir))
      nodes.push(await startNode(ctx, 'culex node B', ['--redis-url', redis.url, '--node-id', 'bench-b'], gcDir))
    } catch (e) {
      await stop()
      throw e
    }
    const [a, b] = nodes as [(typeof nodes)[number], (typeof nodes)[number]]
    const processes = [...nodes.map((n) => ({ name: n.m.name, pid: n.m.pid })), { name: 'redis-server', pid: redis.m.pid }]
    return { pubUrls: [a.url], subUrls: [b.url], brokerPids: [], metricsUrls: [a.metrics, b.metrics], processes, gcDir, stop }
  },
}

/** Why `culex cluster up` cannot be used, or null when it can. */
export function clusterUpUnavailable(ctx: SuiteContext): string | null {
  if (!existsSync(ctx.brokerCli)) return `${ctx.brokerCli} not found`
  const r = spawnSync(process.execPath, [ctx.brokerCli, 'cluster', 'up', '--help'], { encoding: 'utf8', timeout: 15_000 })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`
  if (r.status !== 0) return `\`culex cluster up --help\` failed (exit ${r.status}): ${out.trim().split('\n')[0] ?? ''}`
  if (!/cluster up/.test(out) || !/--nodes/.test(out)) return '`culex cluster up` is not available in this build of the broker CLI'
  return null
}

/** The nodes' /metrics URLs, from the lines `culex cluster up` prints for each node. */
export function nodeMetricsUrls(lines: string[]): string[] {
  const urls: string[] = []
  for (const l of lines) {
    const m = / http (http:\/\/[^\s/]+)\/readyz/.exec(l)
    if (m?.[1]) urls.push(`${m[1]}/metrics`)
  }
  return urls
}

export const culexHaproxy: TargetDef = {
  name: 'culex-3nodes-haproxy',
  description: 'three Culex nodes behind HAProxy (`culex cluster up --nodes 3`); all clients through the HAProxy MQTT port (settings as culex-1node, via the environment)',
  async start(ctx) {
    const why = clusterUpUnavailable(ctx)
    if (why) throw new SkipTarget(why)
    const [mqtt, tls, wss, stats, api] = (await freePorts(5)) as [number, number, number, number, number]
    const dir = mkdtempSync(path.join(ctx.tmpRoot, 'cluster-'))
    const args = [ctx.brokerCli, 'cluster', 'up', '--nodes', '3', '--mqtt-port', `${mqtt}`, '--tls-port', `${tls}`]
    args.push('--wss-port', `${wss}`, '--stats-port', `${stats}`, '--api-port', `${api}`, '--dir', dir)
    const gcDir = gcDirIn(ctx)
    const m = new Managed('culex cluster up', process.execPath, args, { env: culexEnv(gcDir) })
    await ready(m, () => m.waitForLine(/cluster ready/, 90_000))
    const url = `mqtt://127.0.0.1:${mqtt}`
    const metricsUrls = nodeMetricsUrls(m.lines(/^culex cluster: .* http http:\/\//))
    const processes = [{ name: 'culex cluster up', pid: m.pid }]
    return { pubUrls: [url], subUrls: [url], brokerPids: [], metricsUrls, processes, gcDir, stop: () => m.stop('SIGINT', 30_000) }
  },
}

export const TARGETS: TargetDef[] = [mosquitto, culexNode, culexCluster2, culexHaproxy]
