/**
 * [MQTT-4.3.2-2] A peer that falls silent (frozen, not dead) asks for what it missed once it is
 * back, so the batches settled while it was silent must still be kept when the first thing that
 * reads it as gone is not a PUBLISH reply (BusPeers.expected()) but the beat timer's trim, which
 * asks BusProgress.confirmed() and, with the peer no longer live, would see "every live peer
 * has everything" and drop all older than RECENT_MS. Pure: Date.now() only.
 */
import { afterEach, expect, it, vi } from 'vitest'
import type { Redis } from 'ioredis'
import { BusPeers, SILENT_MS } from '../../src/cluster/bus-peers.js'
import { KeptBatches, RECENT_MS } from '../../src/cluster/bus-keep.js'

afterEach(() => {
  vi.useRealTimers()
})

it('a peer read as not live by the progress floor is taken for dead first: what it has not confirmed stays kept', () => {
  vi.useFakeTimers({ toFake: ['Date'] })
  const t0 = Date.now()
  const sub = { status: 'ready' } as unknown as Redis
  const peers: BusPeers = new BusPeers(sub, (peer) => kept.silence(peer))
  // the peer confirmed batch 5, then froze
  const confirmed = (): number => (peers.isLive('a') ? 5 : Infinity)
  const kept = new KeptBatches(() => {}, undefined, undefined, undefined, undefined, confirmed)
  peers.heard('a')
  for (let seq = 6; seq <= 10; seq++) kept.keep(seq, Buffer.alloc(64))
  // nothing published since (its publishers wait): the first look after SILENT_MS is the trim
  vi.setSystemTime(t0 + SILENT_MS + RECENT_MS + 100)
  kept.trim()
  expect(kept.range(6, 11).map((k) => k.seq)).toEqual([6, 7, 8, 9, 10])
  expect(kept.active).toBe(true)
})
