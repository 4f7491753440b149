/**
 * persistent: `throughput` with subscribers that keep a session (CONNECT clean 0), the usual IoT
 * back end: every QoS 1/2 message is kept for the session until its PUBACK, so a broker stores
 * and releases each one (in a cluster, in Redis) besides delivering it. The sessions are ended
 * after the run (a clean connect of each subscriber).
 */
import { pairs, type TopologyBuilder } from './topology.js'

export const persistent: TopologyBuilder = (cfg, prefix) => ({ ...pairs(cfg.pairs, prefix, 0), persistent: true })
