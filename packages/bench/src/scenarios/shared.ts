/**
 * shared: P publishers on their own topics; G shared subscription groups `$share/g<k>/<prefix>/#`,
 * M members each. Every message must reach exactly one member of every group (the accounting adds
 * up each group's members per publisher); the report gives deliveries/s and the balance.
 */
import { range, type TopologyBuilder } from './topology.js'

export const shared: TopologyBuilder = (cfg, prefix) => {
  const publishers = Array.from({ length: cfg.publishers }, (_, i) => ({ topic: `${prefix}/shared/${i}` }))
  const subscribers: Array<{ filter: string; pubs: number[] }> = []
  const groups: Array<{ members: number[]; pubs: number[] }> = []
  for (let g = 0; g < cfg.groups; g++) {
    const members: number[] = []
    for (let m = 0; m < cfg.members; m++) {
      members.push(subscribers.length)
      subscribers.push({ filter: `$share/g${g}/${prefix}/shared/#`, pubs: [] })
    }
    groups.push({ members, pubs: range(cfg.publishers) })
  }
  return { publishers, subscribers, groups, ratePerPub: 0 }
}
