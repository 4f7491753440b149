import { describe, expect, it } from 'vitest'
import { AckWaits } from '../../src/cluster/ack-wait.js'

// The wait behind a SUBACK until every other node applied a subscription or a $share join
// (subscription-sync.ts, shared/redis-store.ts). Pure logic: the Redis side is covered by
// suback-order.test.ts and share-join-order.test.ts.
describe('AckWaits', () => {
  it('resolves once every other node acknowledged, acknowledgements arriving before the receivers count included', async () => {
    const waits = new AckWaits(5000)
    let late = false
    let resolved = false
    let key = ''
    const p = waits
      .announce(
        async (k) => {
          key = k
          waits.ack(k) // a fast node answers before PUBLISH's reply is read
          return 3 // our node and two others
        },
        () => (late = true),
      )
      .then(() => (resolved = true))
    await new Promise((r) => setImmediate(r))
    expect(resolved).toBe(false)
    expect(waits.waiting(key)).toBe(true)
    waits.ack(key)
    await p
    expect(late).toBe(false)
    expect(waits.waiting(key)).toBe(false)
  })

  it('gives up after the timeout, says how many answered, and waits for the extra promise too', async () => {
    const waits = new AckWaits(50)
    let seenLate: [number, number] | undefined
    await waits.announce(
      async (key) => {
        waits.ack(key)
        return 3
      },
      (seen, expected) => (seenLate = [seen, expected]),
    )
    expect(seenLate).toEqual([1, 2])
    let extraLate = false
    await waits.announce(
      async () => 1, // no other node
      () => (extraLate = true),
      new Promise(() => {}), // an own barrier that never settles
    )
    expect(extraLate).toBe(true)
  })

  it('a failed announcement throws and leaves nothing waiting', async () => {
    const waits = new AckWaits(5000)
    let key = ''
    await expect(
      waits.announce(
        async (k) => {
          key = k
          throw new Error('redis down')
        },
        () => {},
      ),
    ).rejects.toThrow('redis down')
    expect(waits.waiting(key)).toBe(false)
  })
})
