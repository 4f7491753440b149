/**
 * Helpers for the security tests: Culex nodes (in-process or the built CLI),
 * MQTT clients, raw sockets speaking hand-made packets, /metrics reading, a
 * well-behaved "canary" client, and a throwaway redis-server. Everything
 * listens on free loopback ports and is stopped by stopAll().
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IClientOptions, MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { hashPassword } from '../../src/auth/password.js'
import { formatUsersFile } from '../../src/auth/users.js'
import type { CulexNode } from '../../src/main.js'
import { CLI, sleep, waitFor } from './wait.js'
import { closeClients, connect, startTestNode as startNodeOnFreePorts } from './node.js'
export { CLI, sleep, waitFor }


const cleanups: Array<() => Promise<void> | void> = []
export async function stopAll(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {})
}


export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'culex-sec-'))
}

/** cheap scrypt parameters: the node verifies whatever parameters a hash names */
const FAST = { N: 1024, r: 8, p: 1 }
export async function writeUsers(path: string, users: Array<{ name: string; password: string; roles?: string[] }>): Promise<void> {
  const records = await Promise.all(users.map(async (u) => ({ username: u.name, hash: await hashPassword(u.password, FAST), roles: u.roles ?? [] })))
  writeFileSync(path, formatUsersFile(records))
}

/** a node in this process */
/** an in-process node on free loopback ports (node.ts), stopped by stopAll */
export async function startTestNode(overrides: Record<string, unknown> = {}): Promise<CulexNode> {
  const node = await startNodeOnFreePorts(overrides)
  cleanups.push(() => node.close())
  return node
}

export interface SpawnedNode {
  child: ChildProcess
  ports: { mqtt: number; ws: number; http: number }
  /** everything written to stdout (pino JSON lines) */
  out: string[]
  exited: () => boolean
  stop(): Promise<void>
}

/** the built CLI: `culex start` with flags (key -> value) */
export async function spawnNode(flags: Record<string, string | number | boolean> = {}, env: Record<string, string> = {}): Promise<SpawnedNode> {
  const args = ['start', '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0']
  for (const [k, v] of Object.entries(flags)) args.push(`--${k.replace(/_/g, '-')}`, String(v))
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: string[] = []
  const err: string[] = []
  let exitCode: number | null | undefined
  child.on('exit', (code) => (exitCode = code))
  child.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => err.push(d))
  const stop = async (): Promise<void> => {
    if (exitCode !== undefined) return
    child.kill('SIGTERM')
    const t = setTimeout(() => child.kill('SIGKILL'), 5000)
    await once(child, 'exit').catch(() => {})
    clearTimeout(t)
  }
  cleanups.push(stop)
  let ready: { listeners: Record<string, string> } | undefined
  await waitFor(
    () => {
      if (exitCode !== undefined) throw new Error(`node exited ${exitCode}: ${err.join('')}`)
      for (const l of out.join('').split('\n')) if (l.includes('"culex ready"')) ready = JSON.parse(l)
      return ready !== undefined
    },
    15_000,
    'culex ready',
  )
  const port = (s: string): number => Number(/:(\d+)/.exec(s)![1])
  return {
    child,
    ports: { mqtt: port(ready!.listeners.mqtt!), ws: port(ready!.listeners.ws!), http: port(ready!.listeners.http!) },
    out,
    exited: () => exitCode !== undefined,
    stop,
  }
}

/** run the built CLI to completion, with stdin text */
export async function runCli(args: string[], opts: { stdin?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  child.stdin.end(opts.stdin ?? '')
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

// mqtt.js clients come from node.ts (connect); stopAll closes them
cleanups.push(closeClients)
export { connect }

/**
 * The CONNACK return code a CONNECT gets (0 = accepted) and whether the
 * socket was closed afterwards; 'closed' when the socket closed with no CONNACK.
 */
export async function connackOf(port: number, opts: { username?: string; password?: string; clientId?: string; will?: { topic: string; payload: string }; localAddress?: string } = {}): Promise<{ code: number | 'closed'; closedAfter: boolean; ms: number }> {
  const t0 = Date.now()
  const raw = await rawSocket(port, opts.localAddress)
  raw.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    clientId: opts.clientId ?? `probe-${Math.random().toString(16).slice(2)}`,
    username: opts.username,
    password: opts.password === undefined ? undefined : Buffer.from(opts.password),
    will: opts.will ? { topic: opts.will.topic, payload: Buffer.from(opts.will.payload), qos: 0, retain: false } : undefined,
  })
  const ack = await raw.next('connack', 5000)
  const ms = Date.now() - t0
  if (!ack) {
    raw.destroy()
    return { code: 'closed', closedAfter: true, ms }
  }
  // a refused CONNECT must be followed by the close [MQTT-3.2.2-5]; an accepted one stays open
  const closedAfter = await raw.closedWithin(ack.returnCode === 0 ? 50 : 2000)
  raw.destroy()
  return { code: ack.returnCode ?? -1, closedAfter, ms }
}

export interface RawClient {
  socket: Socket
  packets: mqttPacket.Packet[]
  send(packet: Record<string, unknown>): void
  write(bytes: Buffer): void
  /** the next packet of that type (undefined when the socket closes or time runs out) */
  next(cmd: string, ms?: number): Promise<(mqttPacket.Packet & Record<string, any>) | undefined>
  closed: boolean
  closedWithin(ms: number): Promise<boolean>
  destroy(): void
}

/** a TCP socket to the node, parsing what the node sends */
export async function rawSocket(port: number, localAddress?: string): Promise<RawClient> {
  const socket = netConnect({ port, host: '127.0.0.1', localAddress })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const packets: mqttPacket.Packet[] = []
  const waiters = new Set<() => void>()
  const wake = (): void => {
    for (const w of [...waiters]) w()
  }
  parser.on('packet', (p) => {
    packets.push(p)
    wake()
  })
  parser.on('error', () => socket.destroy())
  socket.on('data', (d) => parser.parse(d))
  const raw: RawClient = {
    socket,
    packets,
    closed: false,
    send: (p) => void socket.write(mqttPacket.generate(p as unknown as mqttPacket.Packet)),
    write: (b) => void socket.write(b),
    next: (cmd, ms = 3000) =>
      new Promise((resolve) => {
        let i = 0
        const check = (): void => {
          for (; i < packets.length; i++) {
            if (packets[i]!.cmd === cmd) {
              done(packets[i] as never)
              return
            }
          }
          if (raw.closed) done(undefined)
        }
        const timer = setTimeout(() => done(undefined), ms)
        const done = (p: any): void => {
          clearTimeout(timer)
          waiters.delete(check)
          resolve(p)
        }
        waiters.add(check)
        check()
      }),
    closedWithin: (ms) =>
      new Promise((resolve) => {
        if (raw.closed) return resolve(true)
        const timer = setTimeout(() => resolve(false), ms)
        socket.once('close', () => {
          clearTimeout(timer)
          resolve(true)
        })
      }),
    destroy: () => socket.destroy(),
  }
  socket.on('close', () => {
    raw.closed = true
    wake()
  })
  cleanups.push(() => {
    socket.destroy()
  })
  return raw
}

/** a raw client that has sent CONNECT and got CONNACK 0 */
export async function rawConnected(port: number, opts: { username?: string; password?: string; clientId?: string } = {}): Promise<RawClient> {
  const raw = await rawSocket(port)
  raw.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: 60,
    clientId: opts.clientId ?? `raw-${Math.random().toString(16).slice(2)}`,
    username: opts.username,
    password: opts.password === undefined ? undefined : Buffer.from(opts.password),
  })
  const ack = await raw.next('connack')
  if (!ack || ack.returnCode !== 0) throw new Error(`raw CONNECT refused: ${ack?.returnCode ?? 'closed'}`)
  return raw
}

/** a Prometheus sample from /metrics */
/** a metric's value, summed over its label sets (culex_messages_dropped_total has one per reason) */
export async function metric(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
  const samples = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))]
  if (samples.length === 0) throw new Error(`metric ${name} not found`)
  return samples.reduce((a, m) => a + Number(m[1]), 0)
}

/**
 * A well-behaved client: publishes QoS 1 to its own topic every `everyMs`
 * and checks each message comes back, with its round-trip time.
 */
export class Canary {
  sent = 0
  readonly got = new Set<number>()
  /** messages the node acknowledged (PUBACK): from then on they are the node's to deliver [MQTT-4.3.2-2] */
  readonly acked = new Set<number>()
  /** when the connection closed, if it did (ms since epoch) */
  closedAt: number | undefined
  readonly rtts: number[] = []
  private timer: NodeJS.Timeout | undefined
  private readonly sentAt = new Map<number, number>()

  private constructor(
    readonly client: MqttClient,
    private readonly topic: string,
  ) {}

  static async start(url: string, opts: IClientOptions = {}, everyMs = 20): Promise<Canary> {
    const client = await connect(url, { clientId: `canary-${Math.random().toString(16).slice(2)}`, keepalive: 30, ...opts })
    const topic = `canary/${client.options.clientId}`
    await client.subscribeAsync(topic, { qos: 1 })
    const c = new Canary(client, topic)
    client.once('close', () => (c.closedAt ??= Date.now()))
    client.on('message', (_t, payload) => {
      const n = Number(payload.toString())
      if (Number.isInteger(n) && n >= 0 && n < c.sent && !c.got.has(n)) {
        c.got.add(n)
        c.rtts.push(Date.now() - (c.sentAt.get(n) ?? Date.now()))
      }
    })
    c.timer = setInterval(() => {
      const n = c.sent++
      c.sentAt.set(n, Date.now())
      client.publish(topic, String(n), { qos: 1 }, (err) => {
        if (!err) c.acked.add(n)
      })
    }, everyMs)
    return c
  }

  /** stop publishing; every message sent must arrive and the connection must still be up */
  async finish(waitMs = 5000): Promise<{ sent: number; lost: number; ackedLost: number; p99: number; max: number }> {
    clearInterval(this.timer)
    await waitFor(() => this.got.size >= this.sent, waitMs, 'canary messages').catch(() => {})
    const sorted = [...this.rtts].sort((a, b) => a - b)
    return {
      sent: this.sent,
      lost: this.sent - this.got.size,
      /** acknowledged by the node and never delivered */
      ackedLost: [...this.acked].filter((n) => !this.got.has(n)).length,
      p99: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
      max: sorted[sorted.length - 1] ?? 0,
    }
  }

  get connected(): boolean {
    return this.client.connected
  }
}

import { freePort } from './ports.js'
export { freePort }

/** a throwaway redis-server on a free loopback port (no persistence) */
export async function startRedis(): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    let exited = false
    child.on('exit', () => (exited = true))
    const stop = async (): Promise<void> => {
      if (exited) return
      child.kill('SIGKILL')
      await once(child, 'exit').catch(() => {})
    }
    try {
      await waitFor(() => {
        if (exited) throw new Error(`redis-server exited: ${out}`)
        return out.includes('Ready to accept connections')
      }, 10_000, 'redis-server')
    } catch (err) {
      await stop()
      if (attempt < 3) continue
      throw err
    }
    cleanups.push(stop)
    return { url: `redis://127.0.0.1:${port}`, port, stop }
  }
}

/** the SUBACK return codes for filters (mqtt.js rejects when one is 0x80; the codes are what the user sees) */
export async function suback(client: MqttClient, filters: string | string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos })).map((g) => g.qos)
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted
    if (granted) return granted
    throw err
  }
}
