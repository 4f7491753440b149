/** What one engine thread runs, and what it reports back (all structured-clone safe). */
import type { PublisherCounts, StreamCounts } from '../accounting.js'
import type { Protocol, QoS } from '../options.js'

/** How every client of a plan connects (and authenticates). */
export interface ClientAuth {
  /** MQTT protocol level (default 4 = 3.1.1) */
  protocol?: Protocol
  username?: string
  password?: string
  ca?: string
  insecure?: boolean
}

export interface PubPlan {
  id: number
  url: string
  topic: string
  clientId: string
}

export interface SubPlan {
  id: number
  url: string
  filter: string
  clientId: string
  /** publisher ids whose every message this subscriber must receive */
  pubs: number[]
  /** keeps a session (CONNECT clean 0), ended after the run */
  persistent?: boolean
}

export interface LoadSettings extends ClientAuth {
  runId: number
  qos: QoS
  size: number
  window: number
  keepaliveS: number
  connectConcurrency: number
  connectTimeoutMs: number
  /** messages per second per publisher; 0 = as fast as the broker accepts */
  ratePerPub: number
  injectSeqGapEvery?: number
}

export interface LoadPlan {
  settings: LoadSettings
  publishers: PubPlan[]
  subscribers: SubPlan[]
}

/** Measurement window, as decimal strings of process.hrtime.bigint() nanoseconds. */
export interface RunWindow {
  startNs: string
  windowStartNs: string
  windowEndNs: string
}

export interface LoadSnapshot {
  published: number
  received: number
  duplicated: number
  unexpected: number
  gaps: number
  inflight: number
  sentByPub: Array<[number, number]>
}

export interface LoadFinal {
  publishers: PublisherCounts[]
  streams: StreamCounts[]
  unexpected: number
  published: number
  publishedInWindow: number
  receivedInWindow: number
  histogram: string
}

export interface ConnPlan extends ClientAuth {
  urls: string[]
  /** global index of this engine's first connection, and the step between its connections */
  offset: number
  stride: number
  count: number
  clientPrefix: string
  keepaliveS: number
  concurrency: number
  connectTimeoutMs: number
  /** loopback source addresses to spread over round robin (127.0.0.1, .2, ...); 1 = let the kernel choose */
  sourceAddresses: number
}

export interface RampResult {
  connected: number
  failed: number
  errors: Record<string, number>
  histogram: string
  sourceAddresses: string[]
}
