/**
 * Loaded (`--import`, through NODE_OPTIONS) into the Culex nodes the suite starts, so that the
 * connections scenario can measure the V8 heap an idle connection holds after a full garbage
 * collection, as packages/broker/test/node/idle-memory.test.ts does in-process: a heap read without
 * one counts whatever garbage the young generation holds (megabytes). Only in a `culex start`
 * process (not `culex cluster up`, which passes its environment on to its nodes) and only when
 * CULEX_BENCH_GC_DIR is set: it writes `<dir>/<pid>.json` ({ gcs, heap_used_bytes, sockets_at_gc })
 * at start, and on SIGUSR2 runs a full GC and writes it again with gcs + 1 and, appended to
 * sockets_at_gc, the number of TCP sockets the process had open at that GC (its tests check when
 * the GCs ran against the connections). Nothing else: no timer, nothing on the message path.
 */
import { renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// the name is GC_DIR_ENV in ../heap.ts (not imported: this file must import nothing of the bench)
const dir = process.env.CULEX_BENCH_GC_DIR
if (dir && process.argv.slice(2).includes('start')) {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const file = path.join(dir, `${process.pid}.json`)
  let gcs = 0
  const socketsAtGc: number[] = []
  const write = (): void => {
    writeFileSync(`${file}.tmp`, JSON.stringify({ gcs, heap_used_bytes: process.memoryUsage().heapUsed, sockets_at_gc: socketsAtGc }))
    renameSync(`${file}.tmp`, file)
  }
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r))
  process.on('SIGUSR2', () => {
    void (async () => {
      // as the broker's idle-memory test: collections with a loop turn between, for what finalizers and weak references let go
      for (let i = 0; i < 3; i++) {
        gc()
        await turn()
      }
      gcs++
      socketsAtGc.push(process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length)
      write()
    })()
  })
  write()
}
