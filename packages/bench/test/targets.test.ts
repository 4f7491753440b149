import { describe, expect, it } from 'vitest'
import { parseTarget, roundRobin } from '../src/targets.js'
import { sourceAddressCount } from '../src/scenarios/connections.js'
import { sourceAddress } from '../src/engine/conn-engine.js'
import { parseRssMetric } from '../src/memory.js'
import { nodeMetricsUrls } from '../src/suite/brokers.js'

describe('targets', () => {
  it('parses the four schemes with their default ports and paths', () => {
    expect(parseTarget('mqtt://127.0.0.1')).toMatchObject({ protocol: 'mqtt', host: '127.0.0.1', port: 1883 })
    expect(parseTarget('mqtts://localhost:8884')).toMatchObject({ protocol: 'mqtts', host: 'localhost', port: 8884 })
    expect(parseTarget('ws://127.0.0.1:8080')).toMatchObject({ protocol: 'ws', port: 8080, path: '/mqtt' })
    expect(parseTarget('wss://127.0.0.1/custom')).toMatchObject({ protocol: 'wss', port: 443, path: '/custom' })
  })

  it('takes credentials from the URL', () => {
    expect(parseTarget('mqtt://bob:s%40cret@127.0.0.1:1883')).toMatchObject({ username: 'bob', password: 's@cret' })
  })

  it('rejects other schemes and garbage', () => {
    expect(() => parseTarget('http://127.0.0.1')).toThrow(/unsupported scheme/)
    expect(() => parseTarget('127.0.0.1:1883')).toThrow()
  })

  it('assigns clients to URLs round robin', () => {
    const urls = ['a', 'b', 'c']
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => roundRobin(urls, i))).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a'])
    expect(() => roundRobin([], 0)).toThrow()
  })
})

describe('source addresses for many connections', () => {
  it('uses one address while the ephemeral port range suffices', () => {
    expect(sourceAddressCount(1000, 1, 28232)).toBe(1)
  })
  it('adds addresses when one would run out of ports', () => {
    expect(sourceAddressCount(60_000, 1, 28232)).toBe(3)
    expect(sourceAddressCount(10, 4, 28232)).toBe(4)
  })
  it('walks 127.0.0.1, 127.0.0.2, ... across octets', () => {
    expect([0, 1, 253, 254].map(sourceAddress)).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.254', '127.0.1.1'])
  })
})

describe('broker memory from /metrics', () => {
  it('reads process_resident_memory_bytes from prom-client output', () => {
    const text = [
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      'process_resident_memory_bytes 82522112',
      'process_heap_bytes 1234',
    ].join('\n')
    expect(parseRssMetric(text)).toBe(82522112)
  })
  it('sums labelled samples and fails when the metric is absent', () => {
    expect(parseRssMetric('process_resident_memory_bytes{node="a"} 10\nprocess_resident_memory_bytes{node="b"} 5\n')).toBe(15)
    expect(() => parseRssMetric('up 1\n')).toThrow(/not found/)
  })
})

describe('culex cluster up output', () => {
  it('yields each node\'s /metrics URL', () => {
    const lines = [
      'culex cluster: redis   redis://127.0.0.1:35311  (AOF in .culex/redis, log .culex/redis.log)',
      'culex cluster: culex-1  mqtt 127.0.0.1:40001  ws 127.0.0.1:40002/mqtt  http http://127.0.0.1:40003/readyz  (pid 101, log a.log)',
      'culex cluster: culex-2  mqtt 127.0.0.1:40011  ws 127.0.0.1:40012/mqtt  http http://127.0.0.1:40013/readyz  (pid 102, log b.log)',
      'culex cluster: MQTT    mqtt://127.0.0.1:1883',
    ]
    expect(nodeMetricsUrls(lines)).toEqual(['http://127.0.0.1:40003/metrics', 'http://127.0.0.1:40013/metrics'])
  })
})
