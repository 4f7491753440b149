/** Waiting in tests: one `sleep`, one `waitFor`, and where the built CLI lives. */
import { fileURLToPath } from 'node:url'

/** the built `culex` CLI (tests that spawn it need `npm run build` first; `npm test` does it) */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** poll `cond` (sync or async) until it holds; fail naming `what` after `ms` */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    if (await cond()) return
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(10)
  }
}

/** `p`, or an error naming `what` (and `detail()`, e.g. a node's last log lines) after `ms` */
export async function within<T>(p: Promise<T>, ms: number, what: string, detail?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}${detail ? `\n${detail()}` : ''}`)), ms)
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}
