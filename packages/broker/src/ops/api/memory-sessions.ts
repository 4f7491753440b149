/**
 * Single node (memory mode): which client ids hold a persistent session. The in-memory
 * persistence keeps its sessions in private fields, so the node notes them itself: a
 * `clean: false` client that connects has one from then on, a `clean: true` one ends any
 * [MQTT-3.1.2-6]. Lost on restart, like the sessions themselves. In a cluster the sessions are
 * read from Redis instead (sessions.ts).
 */
import type { Aedes, Client } from 'aedes'

export class MemorySessions {
  readonly ids = new Set<string>()
  private readonly onClient = (c: Client): void => {
    if (c.clean) this.ids.delete(c.id)
    else this.ids.add(c.id)
  }
  constructor(private readonly broker: Aedes) {
    broker.on('client', this.onClient)
  }
  close(): void {
    this.broker.off('client', this.onClient)
  }
}
