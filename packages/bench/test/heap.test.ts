/** The heap reading's pure parts: a node's answer, and growth per connection. */
import { describe, expect, it } from 'vitest'
import { parseEntry } from '../src/heap.js'
import { perConnection } from '../src/scenarios/connections.js'

describe('heap per idle connection', () => {
  it('reads a node\'s answer, and nothing from a half-written or foreign file', () => {
    expect(parseEntry('{"gcs":2,"heap_used_bytes":12345678}')).toEqual({ gcs: 2, heap_used_bytes: 12345678 })
    expect(parseEntry('{"gcs":2,')).toBeNull()
    expect(parseEntry('{"pid":1}')).toBeNull()
  })

  it('divides the growth by the connections, and has no figure for no growth or no connections', () => {
    expect(perConnection(10_000_000, 13_900_000, 1000)).toBe(3900)
    expect(perConnection(10_000_000, 9_000_000, 1000)).toBeNull()
    expect(perConnection(10_000_000, 13_900_000, 0)).toBeNull()
    expect(perConnection(null, 13_900_000, 1000)).toBeNull()
  })
})
