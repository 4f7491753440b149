/**
 * The MQTT 5 conformance suite runs in the same three modes as the 3.1.1 one
 * (../conformance/modes.ts), with raw clients on protocol level 5.
 *
 * `test(m)` is vitest's `it`, except where statements.json records that Culex fails a statement
 * the test cites, in this mode (`fails.modes`): there it is `it.fails`, so the suite stays green
 * while the failure is documented, and turns red the day Culex passes it (then update
 * statements.json and `npm run conformance`). docs/conformance-v5.md shows these as fail.
 */
import { readFileSync } from 'node:fs'
import { it } from 'vitest'
import { forEachMode, type Mode, type ModeName } from '../conformance/modes.js'

export type { Mode }

export interface Statement {
  id: string
  text: string
  status: 'test' | 'elsewhere' | 'untestable' | 'client'
  note?: string
  /** Culex fails this statement in these modes, for this reason */
  fails?: { modes: ModeName[]; why: string }
}

export const statements = JSON.parse(readFileSync(new URL('statements.json', import.meta.url), 'utf8')) as Statement[]
const failing = new Map(statements.filter((s) => s.fails).map((s) => [s.id, s.fails!.modes]))

/** run `body` once per mode with MQTT 5 raw clients */
export function forEachMode5(body: (m: Mode) => void, overrides: Record<string, unknown> = {}): void {
  forEachMode(body, overrides, undefined, 5)
}

/** `it`, or `it.fails` where a statement the title cites is known to fail in this mode */
export function test(m: Mode): (title: string, fn: () => Promise<void>, timeout?: number) => void {
  return (title, fn, timeout) => {
    const ids = [...title.matchAll(/\[(MQTT-[0-9.]+-\d+)\]/g)].map((x) => x[1]!)
    const fails = ids.some((id) => failing.get(id)?.includes(m.name))
    ;(fails ? it.fails : it)(title, fn, timeout)
  }
}
