/** Types for the CommonJS internals the cluster adapters build on (they ship none). */
declare module 'msgpack-lite' {
  export function encode(value: unknown): Buffer
  export function decode(buf: Buffer | Uint8Array): any
}

declare module 'qlobber/aedes/qlobber-sub.js' {
  interface QlobberSubOptions {
    separator?: string
    wildcard_one?: string
    wildcard_some?: string
    match_empty_levels?: boolean
  }
  interface TrieSub {
    clientId: string
    topic: string
    qos: number
    rh?: number
    rap?: boolean
    nl?: boolean
  }
  class QlobberSub {
    constructor(options?: QlobberSubOptions)
    subscriptionsCount: number
    add(topic: string, sub: TrieSub): this
    remove(topic: string, sub?: Partial<TrieSub>): this
    match(topic: string, ctx?: string): TrieSub[]
    clear(): this
  }
  export = QlobberSub
}

declare module 'aedes-persistence/callBackPersistence.js' {
  export class CallBackPersistence {
    constructor(factory: (opts: Record<string, unknown>) => unknown, opts?: Record<string, unknown>)
    asyncPersistence: unknown
  }
}

declare module 'aedes-persistence-redis/asyncPersistence.js' {
  class AsyncRedisPersistence {
    constructor(opts: Record<string, unknown>)
    [method: string]: any
  }
  export = AsyncRedisPersistence
}

declare module 'qlobber' {
  /** a trie of topic filters answering only whether some filter matches a topic (qlobber's documented QlobberTrue) */
  export class QlobberTrue {
    constructor(options?: { separator?: string; wildcard_one?: string; wildcard_some?: string; match_empty_levels?: boolean })
    add(topic: string): this
    remove(topic: string): this
    test(topic: string): boolean
    clear(): this
  }
}
