/**
 * Which nodes a shared subscription's members may be picked on (shared/live-nodes.ts), from the
 * node registry's scores (the Redis time each registration lapses). Pure.
 */
import { describe, expect, it } from 'vitest'
import { LiveNodes } from '../../src/shared/live-nodes.js'

describe('the live nodes of shared subscriptions', () => {
  it('a node whose registration lapsed is dead; one beating, this node and one never seen are live', () => {
    const n = new LiveNodes('a')
    n.update(['b', '1500', 'c', '900'], 1000)
    expect(['a', 'b', 'c', 'new'].map((x) => n.isLive(x))).toEqual([true, true, false, true])
  })

  it('Redis came back without its data (an empty registry): the nodes still within their last registration stay live until it lapses', () => {
    const n = new LiveNodes('a')
    n.update(['a', '7000', 'b', '7000'], 1000)
    n.update([], 2000)
    expect(n.isLive('b')).toBe(true)
    // b beats again: live; had it died with the data, it is dead once its last registration lapsed
    n.update([], 7001)
    expect(n.isLive('b')).toBe(false)
    n.update(['b', '13000'], 7500)
    expect(n.isLive('b')).toBe(true)
  })

  it('a node the will sweeper dropped from the registry after it lapsed is dead, even if no read saw it lapsed', () => {
    const n = new LiveNodes('a')
    n.update(['b', '3000'], 1000)
    n.update([], 3500)
    expect(n.isLive('b')).toBe(false)
  })
})
