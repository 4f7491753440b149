/** latency: N pairs (default 1) publishing at a fixed total rate (--rate); the figures are the latency percentiles. */
import { pairs, type TopologyBuilder } from './topology.js'

export const latency: TopologyBuilder = (cfg, prefix) => pairs(cfg.pairs, prefix, cfg.rate / cfg.pairs)
