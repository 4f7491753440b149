/** The receiving side's record of delivered QoS 1/2 messages per origin (bus-seen.ts). Pure, no Redis. */
import { expect, it } from 'vitest'
import { SEEN_WINDOW, SeenByOrigin, SeenWindow } from '../../src/cluster/bus-seen.js'

it('knows the last SEEN_WINDOW messages by broker id and counter, kept up to date between lookups, and never one it was not given', () => {
  const w = new SeenWindow()
  const base = 1_764_000_000_000_000 // counters start from the clock (cluster/dedupe.ts seedCounter)
  for (let i = 0; i < SEEN_WINDOW + 10; i++) w.add('node-a', base + i)
  expect(w.has('node-a', base), 'out of the window before any lookup').toBe(false)
  expect(w.has('node-a', base + 10)).toBe(true)
  expect(w.has('node-a', base + SEEN_WINDOW + 9)).toBe(true)
  expect(w.has('node-b', base + 10), 'another broker id (a will of a dead node)').toBe(false)
  expect(w.has('node-a', base + SEEN_WINDOW + 10), 'not delivered yet').toBe(false)
  w.add('node-a', base + SEEN_WINDOW + 10)
  w.add('node-b', 3)
  expect([w.has('node-a', base + SEEN_WINDOW + 10), w.has('node-b', 3)], 'added after the first lookup').toEqual([true, true])
  // far past the window: the index starts again from the ring
  for (let i = 0; i < 3 * SEEN_WINDOW; i++) w.add('node-a', base + 10 * SEEN_WINDOW + i)
  expect([w.has('node-b', 3), w.has('node-a', base + 13 * SEEN_WINDOW - 1)]).toEqual([false, true])
})

it('one window per origin, forgotten with it', () => {
  const seen = new SeenByOrigin()
  seen.of('o1').add('n', 1)
  expect([seen.of('o1').has('n', 1), seen.of('o2').has('n', 1)]).toEqual([true, false])
  seen.prune((origin) => origin !== 'o1')
  expect(seen.of('o1').has('n', 1)).toBe(false)
})
