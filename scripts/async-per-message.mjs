// Counts the async resources (Immediates, nextTicks, promises, timers) a Culex node creates while it
// is under load: preload it into the node, e.g. with the bench's `latency` scenario at 1000 msg/s
// (issue 15, docs/performance.md "What a message costs at 1000 msg/s"):
//   CULEX_ASYNC_COUNT_OUT=/tmp/counts.json node --import ./scripts/async-per-message.mjs \
//     packages/broker/dist/cli.js start --mqtt-port 18830 ...
// It counts from START_S to START_S + WINDOW_S after start (CULEX_ASYNC_COUNT_START_S, _WINDOW_S,
// default 4 and 5) and writes {type: count} to CULEX_ASYNC_COUNT_OUT; divide by the messages of
// the window. CULEX_ASYNC_COUNT_STACKS=1 also writes where they are made (every 7th, top 25).
import { createHook } from 'node:async_hooks'
import { writeFileSync } from 'node:fs'

const out = process.env.CULEX_ASYNC_COUNT_OUT ?? 'async-per-message.json'
const startMs = Number(process.env.CULEX_ASYNC_COUNT_START_S ?? 4) * 1000
const windowMs = Number(process.env.CULEX_ASYNC_COUNT_WINDOW_S ?? 5) * 1000
const withStacks = process.env.CULEX_ASYNC_COUNT_STACKS === '1'
const counts = {}
const stacks = new Map()
let on = false
let n = 0

createHook({
  init(_id, type) {
    if (!on) return
    counts[type] = (counts[type] ?? 0) + 1
    if (!withStacks || n++ % 7 !== 0) return
    on = false // the stack's own promises are not counted
    const where = (new Error().stack ?? '').split('\n').slice(5, 11).map((s) => s.trim()).join(' < ')
    stacks.set(`${type} :: ${where}`, (stacks.get(`${type} :: ${where}`) ?? 0) + 1)
    on = true
  },
}).enable()

setTimeout(() => {
  on = true
  setTimeout(() => {
    on = false
    const top = [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 25)
    writeFileSync(out, JSON.stringify({ windowMs, counts, stacks: Object.fromEntries(top) }, null, 1))
  }, windowMs).unref()
}, startMs).unref()
