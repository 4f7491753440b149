/** throughput: N publisher/subscriber pairs, each pair on its own topic, publishing as fast as the broker accepts. */
import { pairs, type TopologyBuilder } from './topology.js'

export const throughput: TopologyBuilder = (cfg, prefix) => pairs(cfg.pairs, prefix, 0)
