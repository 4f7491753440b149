/**
 * Shared subscriptions (`$share/<group>/<filter>`, issue 12) on one node: the router and its
 * store (memory, or Redis in cluster mode), wired into Aedes (share-aedes.ts); in cluster mode
 * also the view of live nodes and the sweep of dead nodes' members (one node at a time, under a
 * Redis lock).
 */
import type { Aedes } from 'aedes'
import type { Logger } from '../log.js'
import type { CulexConfig } from '../config/schema.js'
import type { ClusterLinks } from '../cluster/index.js'
import { NODES_KEY } from '../cluster/keys.js'
import { MemoryShareStore, type ShareStore } from './store.js'
import { RedisShareStore } from './redis-store.js'
import { ShareRouter } from './router.js'
import { LiveNodes } from './live-nodes.js'
import { installShare } from './share-aedes.js'

const LOCK_KEY = 'culex:lock:share'

export interface SharedRuntime {
  router: ShareRouter
  close(): Promise<void>
}

export async function startShared(opts: { broker: Aedes; config: CulexConfig; nodeId: string; log: Logger; links?: ClusterLinks }): Promise<SharedRuntime> {
  const { broker, config, nodeId, log, links } = opts
  let store: ShareStore
  let redis: RedisShareStore | undefined
  if (links) {
    redis = new RedisShareStore(links.data, links.pub, links.sub, log)
    await redis.start()
    store = redis
  } else store = new MemoryShareStore()
  const router = new ShareRouter({ nodeId, strategy: config.shared_strategy, queueLimit: config.shared_queue_limit, store, log })
  const wiring = await installShare(broker, router, log)
  if (!links) return { router, close: async () => wiring.close() }

  // ---- cluster: live nodes, dead nodes' members, re-sync ---------------------------------------
  const db = links.data
  // which nodes' members may be picked (live-nodes.ts)
  const nodes = new LiveNodes(nodeId)
  router.setLive((n) => nodes.isLive(n))
  const every = Math.max(200, Math.floor(config.heartbeat_interval_ms / 2))
  let running = false
  const tick = async (): Promise<void> => {
    if (running || db.status !== 'ready') return
    running = true
    try {
      const [s, us] = await db.time()
      const now = Number(s) * 1000 + Math.floor(Number(us) / 1000)
      nodes.update(await db.zrange(NODES_KEY, 0, -1, 'WITHSCORES'), now)
      await router.reassert()
      const lock = await db.set(LOCK_KEY, nodeId, 'PX', every * 3, 'NX')
      if (lock === 'OK' || (await db.get(LOCK_KEY)) === nodeId) {
        await db.pexpire(LOCK_KEY, every * 3)
        await router.sweepDead()
      }
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'shared subscriptions: sweep failed')
    } finally {
      running = false
    }
  }
  await tick()
  const timer = setInterval(() => void tick(), every)
  timer.unref()
  // changes published while our subscriber link was down are lost (Redis pub/sub keeps nothing)
  const onReady = (): void => {
    router.reload().catch((err: Error) => log.warn({ err: err.message }, 'shared subscriptions: reload failed'))
  }
  links.sub.on('ready', onReady)
  return {
    router,
    async close() {
      clearInterval(timer)
      links.sub.off('ready', onReady)
      wiring.close()
      await redis!.close()
    },
  }
}
