/** Shared subscriptions, pure parts: share names, filter matching, member choice, the router's reload (no I/O). */
import { describe, expect, it } from 'vitest'
import { aclFilter, filterMatches, isShareTopic, parseShare } from '../../src/shared/names.js'
import { pickMember, rendezvous, STRATEGIES, type Candidate } from '../../src/shared/strategy.js'
import { ShareGroups, type Member } from '../../src/shared/groups.js'
import { MemoryShareStore, recordKey } from '../../src/shared/store.js'
import { ShareRouter } from '../../src/shared/router.js'
import type { Logger } from '../../src/log.js'

const match = (filter: string, topic: string): boolean => filterMatches(filter.split('/'), topic)

describe('share names', () => {
  it('[MQTT-4.8.2-1 v5] $share/<group>/<filter> names a group per (group, filter)', () => {
    expect(parseShare('$share/workers/telemetry/#')).toEqual({ group: 'workers', filter: 'telemetry/#', key: 'workers/telemetry/#' })
    expect(parseShare('$share/g/a')).toEqual({ group: 'g', filter: 'a', key: 'g/a' })
    expect(parseShare('$share/g//')).toEqual({ group: 'g', filter: '/', key: 'g//' })
    expect(parseShare('a/b')).toBeUndefined()
    expect(parseShare('$SYS/#')).toBeUndefined()
    expect(parseShare('$sharex/g/a')).toBeUndefined()
  })

  it('[MQTT-4.8.2-2 v5] empty group, + or # in the group, or no filter: invalid (SUBACK 0x80)', () => {
    for (const bad of ['$share', '$share/', '$share//a', '$share/g', '$share/g/', '$share/+/a', '$share/#/a', '$share/g+/a', '$share/#', '$share/+'])
      expect(parseShare(bad), bad).toBe('invalid')
  })

  it('a PUBLISH to $share/... is refused; the ACL checks the inner filter', () => {
    expect(isShareTopic('$share/g/a')).toBe(true)
    expect(isShareTopic('$share')).toBe(true)
    expect(isShareTopic('share/g/a')).toBe(false)
    expect(aclFilter('$share/g/devices/#')).toBe('devices/#')
    expect(aclFilter('devices/#')).toBe('devices/#')
    expect(aclFilter('$share/+/x')).toBe('$share/+/x')
  })

  it('[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.2-1] filters match as in MQTT 3.1.1', () => {
    expect(match('a/#', 'a')).toBe(true)
    expect(match('a/#', 'a/b/c')).toBe(true)
    expect(match('a/#', 'ab')).toBe(false)
    expect(match('a/+', 'a/b')).toBe(true)
    expect(match('a/+', 'a/')).toBe(true)
    expect(match('a/+', 'a')).toBe(false)
    expect(match('a/+', 'a/b/c')).toBe(false)
    expect(match('+/+', '/x')).toBe(true)
    expect(match('a', 'a/b')).toBe(false)
    expect(match('a/b', 'a/b')).toBe(true)
    expect(match('#', '$SYS/x')).toBe(false)
    expect(match('+/x', '$SYS/x')).toBe(false)
    expect(match('$SYS/#', '$SYS/x')).toBe(true)
  })
})

const cands = (...ids: string[]): Candidate[] => ids.map((id, i) => ({ clientId: id, node: `n${i % 2}` }))
const ctx = (turn: number, over: Partial<{ topic: string; publisher: string; node: string }> = {}) => ({ node: 'n1', topic: 't', turn, random: Math.random, ...over })

describe('member choice', () => {
  it('round_robin takes each member in turn', () => {
    const m = cands('a', 'b', 'c')
    expect([0, 1, 2, 3, 4, 5].map((t) => pickMember('round_robin', m, ctx(t))!.clientId)).toEqual(['a', 'b', 'c', 'a', 'b', 'c'])
  })

  it('random spreads over every member', () => {
    const m = cands('a', 'b', 'c', 'd')
    const seen = new Set<string>()
    for (let i = 0; i < 400; i++) seen.add(pickMember('random', m, ctx(i))!.clientId)
    expect([...seen].sort()).toEqual(['a', 'b', 'c', 'd'])
  })

  it('local_first prefers members on this node, else all', () => {
    const m = cands('a', 'b', 'c', 'd') // a, c on n0; b, d on n1
    expect([0, 1, 2].map((t) => pickMember('local_first', m, ctx(t, { node: 'n1' }))!.clientId)).toEqual(['b', 'd', 'b'])
    expect([0, 1, 2].map((t) => pickMember('local_first', m, ctx(t, { node: 'n9' }))!.clientId)).toEqual(['a', 'b', 'c'])
  })

  it('hash_clientid and hash_topic keep a publisher / a topic on one member; a leaving member moves only its keys', () => {
    const m = cands('a', 'b', 'c', 'd')
    const byPub = new Map<string, string>()
    for (let i = 0; i < 200; i++) {
      const p = `pub-${i}`
      const first = pickMember('hash_clientid', m, ctx(i, { publisher: p }))!.clientId
      expect(pickMember('hash_clientid', m, ctx(i + 7, { publisher: p, topic: `x/${i}` }))!.clientId).toBe(first)
      byPub.set(p, first)
    }
    expect(new Set(byPub.values()).size).toBe(4)
    const without = m.filter((c) => c.clientId !== 'b')
    for (const [p, was] of byPub) if (was !== 'b') expect(rendezvous(without, p)!.clientId).toBe(was)
    const t1 = pickMember('hash_topic', m, ctx(0, { topic: 'x/1', publisher: 'p1' }))!.clientId
    expect(pickMember('hash_topic', m, ctx(5, { topic: 'x/1', publisher: 'p2' }))!.clientId).toBe(t1)
  })

  it('no member: nothing; one member: that one, whatever the strategy', () => {
    for (const s of STRATEGIES) {
      expect(pickMember(s, [], ctx(0))).toBeUndefined()
      expect(pickMember(s, cands('x'), ctx(3))!.clientId).toBe('x')
    }
  })
})

const member = (clientId: string, over: Partial<Member> = {}): Member => ({ clientId, node: 'n1', qos: 1, online: true, clean: true, ...over })

describe('group membership', () => {
  it('groups per (group, filter); online members on live nodes only; exclusion of a failed member', () => {
    const g = new ShareGroups()
    g.set('g/a/#', member('m1'))
    g.set('g/a/#', member('m2', { node: 'n2' }))
    g.set('g/a/#', member('m3', { online: false, clean: false }))
    g.set('h/a/#', member('m1'))
    g.set('g/b', member('m4'))
    expect(g.match('a/x').sort()).toEqual(['g/a/#', 'h/a/#'])
    expect(g.match('b')).toEqual(['g/b'])
    expect(g.online('g/a/#').map((m) => m.clientId)).toEqual(['m1', 'm2'])
    expect(g.hasOfflinePersistent('g/a/#')).toBe(true)
    const live = (n: string): boolean => n !== 'n2'
    const c = { node: 'n1', topic: 'a/x', random: Math.random }
    expect([0, 1, 2].map(() => g.pick('g/a/#', 'round_robin', c, live)!.clientId)).toEqual(['m1', 'm1', 'm1'])
    expect(g.pick('g/a/#', 'round_robin', c, () => true, 'm1')!.clientId).toBe('m2')
    g.remove('g/b', 'm4')
    expect(g.match('b')).toEqual([])
    expect(g.summary().find((s) => s.key === 'g/a/#')).toEqual({ key: 'g/a/#', members: 3, online: 2 })
  })
})

describe('router reload', () => {
  it('a join heard while the membership is being loaded is kept (the load was read before it)', async () => {
    // the load's answer is the store as it was when asked, delivered later: a Redis that answered
    // the load before it took a join whose notification arrives before the load's reply
    class SlowLoad extends MemoryShareStore {
      answer!: () => void
      override async load(): Promise<Array<[string, Member]>> {
        const snapshot = await super.load()
        await new Promise<void>((r) => (this.answer = r))
        return snapshot
      }
    }
    const store = new SlowLoad()
    const log = { warn() {}, info() {}, debug() {} } as unknown as Logger
    const router = new ShareRouter({ nodeId: 'n1', strategy: 'round_robin', queueLimit: 10, store, log })
    const reloading = router.reload()
    await store.rejoin('g/t', { clientId: 'm1', node: 'n2', qos: 1, online: true, clean: false })
    store.answer()
    await reloading
    expect(router.membersOf('g/t').map((m) => m.clientId)).toEqual(['m1'])
  })
})

describe('the sweep of offline members (cluster: one node sweeps, router.ts sweepDead)', () => {
  it('a clean member whose node died leaves only after two sweeps found nothing held: a record written late for it (a node that picked it before hearing it went) is still sent to another member', async () => {
    const store = new MemoryShareStore()
    const log = { warn() {}, info() {}, debug() {} } as unknown as Logger
    const router = new ShareRouter({ nodeId: 'n1', strategy: 'round_robin', queueLimit: 10, store, log })
    const sent: Array<{ topic: string; to: unknown }> = []
    await router.start({
      client: () => undefined,
      deliver() {},
      keep: async () => {},
      emit: (p) => void sent.push({ topic: String(p.shareTopic), to: p.share }),
      barrier: async () => {},
      stopping: () => false,
    })
    router.setLive((n) => n !== 'n2')
    await store.rejoin('g/t', { clientId: 'gone', node: 'n2', qos: 1, online: true, clean: true })
    await store.rejoin('g/t', { clientId: 'here', node: 'n1', qos: 1, online: true, clean: true })
    const members = (): string[] => router.membersOf('g/t').map((m) => m.clientId).sort()

    await router.sweepDead()
    expect(members(), 'after the first sweep that found nothing held').toEqual(['gone', 'here'])
    // the late record: a message picked for `gone` before its picker heard it was offline
    const rec = { g: 'g/t', t: 't', p: Buffer.from('late'), q: 1, b: 'n3', c: 7 }
    await store.hold('gone', recordKey(rec), rec)
    await router.sweepDead()
    expect(sent).toEqual([{ topic: 't', to: [['g/t', 'here', 'n1']] }])
    expect(members()).toEqual(['gone', 'here'])
    // nothing held any more, twice in a row: it leaves
    await router.sweepDead()
    expect(members()).toEqual(['gone', 'here'])
    await router.sweepDead()
    expect(members()).toEqual(['here'])
  })
})
