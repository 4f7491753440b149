/** fanin: N publishers on their own topics, one subscriber on a wildcard covering them all. */
import { range, type TopologyBuilder } from './topology.js'

export const fanin: TopologyBuilder = (cfg, prefix) => ({
  publishers: Array.from({ length: cfg.publishers }, (_, i) => ({ topic: `${prefix}/in/${i}` })),
  subscribers: [{ filter: `${prefix}/in/+`, pubs: range(cfg.publishers) }],
  ratePerPub: 0,
})
