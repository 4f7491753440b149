/** Who publishes where and who must receive what: the shape of a message scenario. */
import type { ScenarioConfig } from '../options.js'

export interface Topology {
  publishers: Array<{ topic: string }>
  /** each subscriber's filter and the publisher ids it must receive every message of */
  subscribers: Array<{ filter: string; pubs: number[] }>
  /**
   * shared subscription groups: each message of `pubs` goes to exactly one of `members`
   * (subscriber indices; those subscribers list no `pubs` of their own)
   */
  groups?: Array<{ members: number[]; pubs: number[] }>
  /** messages per second per publisher; 0 = as fast as the broker accepts */
  ratePerPub: number
  /** subscribers keep a session (CONNECT clean 0: every QoS 1/2 message is queued for them as well as sent); ended after the run */
  persistent?: boolean
}

export type TopologyBuilder = (cfg: ScenarioConfig, prefix: string) => Topology

/** N pairs, each publisher with its own subscriber on its own topic. */
export function pairs(n: number, prefix: string, ratePerPub: number): Topology {
  const publishers = Array.from({ length: n }, (_, i) => ({ topic: `${prefix}/pair/${i}` }))
  const subscribers = Array.from({ length: n }, (_, i) => ({ filter: `${prefix}/pair/${i}`, pubs: [i] }))
  return { publishers, subscribers, ratePerPub }
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
}
