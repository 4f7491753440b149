/**
 * Prometheus metrics of shared subscriptions, per group (label `group` = `<group>/<filter>`),
 * read from the router at scrape time: nothing is counted on the message path but integers.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { ShareRouter } from './router.js'

export function registerShareMetrics(registry: Registry, router: ShareRouter): void {
  new Gauge({
    name: 'culex_shared_members',
    help: 'Members of each shared subscription group, cluster-wide, by state (online, offline)',
    labelNames: ['group', 'state'],
    registers: [registry],
    collect() {
      this.reset()
      for (const g of router.summary()) {
        this.set({ group: g.key, state: 'online' }, g.online)
        this.set({ group: g.key, state: 'offline' }, g.members - g.online)
      }
    },
  })
  const counter = (name: string, help: string, read: (s: { messages: number; redispatched: number; dropped: number }) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['group'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [key, s] of router.stats) this.inc({ group: key }, read(s))
      },
    })
  }
  counter('culex_shared_messages_total', 'Messages this node received for each shared subscription group (one member picked per message)', (s) => s.messages)
  counter('culex_shared_redispatched_total', 'Messages this node sent to another member of the group because theirs went away unacknowledged', (s) => s.redispatched)
  counter('culex_shared_dropped_total', 'Messages of a group that reached no member: QoS 0 with no member online, the group queue over shared_queue_limit', (s) => s.dropped)
}
