/** Start real Culex nodes (in-process or as a CLI child) on free loopback ports, and MQTT clients for them. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { loadConfig, startNode, type CulexNode } from '../../src/main.js'
import { CLI, sleep, waitFor } from './wait.js'
export { CLI, sleep, waitFor }

export async function startTestNode(overrides: Record<string, unknown> = {}): Promise<CulexNode> {
  const config = loadConfig({
    flags: { host: '127.0.0.1', mqtt_port: 0, ws_port: 0, http_port: 0, log_level: 'silent', ...overrides },
  })
  return startNode(config)
}

/**
 * One in-process node for a whole test file: started before its tests, stopped after them; the
 * mqtt.js clients made with `connect` are closed after each test.
 */
export function useTestNode(overrides: Record<string, unknown> = {}): { readonly node: CulexNode; readonly url: string; readonly ops: string } {
  let node: CulexNode | undefined
  beforeAll(async () => {
    node = await startTestNode(overrides)
  })
  afterEach(closeClients)
  afterAll(() => node?.close())
  return {
    get node() {
      return node!
    },
    get url() {
      return `mqtt://127.0.0.1:${node!.ports.mqtt}`
    },
    get ops() {
      return `http://127.0.0.1:${node!.ports.http}`
    },
  }
}

const clients: MqttClient[] = []

/** an mqtt.js client connected to url; closed by closeClients() */
export async function connect(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  clients.push(client)
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error('closed before CONNACK')))
  })
  return client
}

export async function closeClients(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
}

export interface Received {
  topic: string
  payload: string
  retain: boolean
  qos: number
}

/** collect every message a client gets */
export function collect(client: MqttClient): Received[] {
  const got: Received[] = []
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos }))
  return got
}


export interface CliRun {
  child: ChildProcess
  stdout: string[]
  stderr: string[]
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** run the built `culex` CLI with args and env */
export function runCli(args: string[], env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const stdout: string[] = []
  const stderr: string[] = []
  child.stdout!.setEncoding('utf8').on('data', (d: string) => stdout.push(d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d))
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  return { child, stdout, stderr, exit }
}

/** wait for the `culex ready` log line of a CLI child and return its ports */
export async function cliReady(run: CliRun, ms = 30_000): Promise<{ mqtt: number; ws: number; http: number }> {
  let line: { listeners: Record<string, string> } | undefined
  await waitFor(
    () => {
      for (const l of run.stdout.join('').split('\n')) if (l.includes('"culex ready"')) line = JSON.parse(l)
      return line !== undefined
    },
    ms,
    'culex ready',
  )
  const port = (s: string): number => Number(/:(\d+)/.exec(s)![1])
  return { mqtt: port(line!.listeners.mqtt!), ws: port(line!.listeners.ws!), http: port(line!.listeners.http!) }
}
