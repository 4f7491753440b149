/** fanout: P publishers (default 1) on one topic, M subscribers each receiving every message. */
import { range, type TopologyBuilder } from './topology.js'

export const fanout: TopologyBuilder = (cfg, prefix) => {
  const topic = `${prefix}/fanout`
  return {
    publishers: Array.from({ length: cfg.publishers }, () => ({ topic })),
    subscribers: Array.from({ length: cfg.subscribers }, () => ({ filter: topic, pubs: range(cfg.publishers) })),
    ratePerPub: 0,
  }
}
