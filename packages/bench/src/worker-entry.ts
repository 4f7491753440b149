/** Worker thread entry: runs a ThreadEngine and answers the main thread's calls. */
import { parentPort } from 'node:worker_threads'
import { ThreadEngine } from './engine/thread-engine.js'

const engine = new ThreadEngine()
const port = parentPort
if (!port) throw new Error('worker-entry must run in a worker thread')

port.on('message', async (msg: { id: number; method: string; args: unknown[] }) => {
  try {
    const fn = (engine as unknown as Record<string, (...a: unknown[]) => unknown>)[msg.method]
    if (typeof fn !== 'function') throw new Error(`unknown method ${msg.method}`)
    const value = await fn.apply(engine, msg.args)
    port.postMessage({ id: msg.id, ok: true, value })
  } catch (e) {
    port.postMessage({ id: msg.id, ok: false, error: e instanceof Error ? e.message : String(e) })
  }
})
