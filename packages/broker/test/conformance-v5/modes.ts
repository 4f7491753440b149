/**
 * The MQTT 5 conformance suite runs in the same three modes as the 3.1.1 one
 * (../conformance/modes.ts), with raw clients on protocol level 5.
 *
 * `test(m)` is vitest's `it`, except for a test statements.json records as failing in this mode
 * (a statement's `fails`: a part of the test's name, the modes, why): there it is `it.fails`, so
 * the suite stays green while the failure is documented, and turns red the day Culex passes it
 * (then update statements.json and run `npm run conformance`). docs/conformance-v5.md shows these
 * statements as "fail" in those modes, with the reason.
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
  /** Culex fails this statement in the test whose name holds `test`, in these modes, for this reason */
  fails?: Failure[]
}

export interface Failure {
  modes: ModeName[]
  test: string
  why: string
}

export const statements = JSON.parse(readFileSync(new URL('statements.json', import.meta.url), 'utf8')) as Statement[]
const failing = new Map(statements.map((s) => [s.id, s.fails ?? []]))

/** the known failure a test (by its name) meets in a mode, if any */
export function knownFailure(title: string, mode: ModeName): Failure | undefined {
  for (const [, id] of title.matchAll(/\[(MQTT-[0-9.]+-\d+)\]/g)) {
    const f = failing.get(id!)?.find((x) => x.modes.includes(mode) && title.includes(x.test))
    if (f) return f
  }
  return undefined
}

/** run `body` once per mode with MQTT 5 raw clients */
export function forEachMode5(body: (m: Mode) => void, overrides: Record<string, unknown> = {}): void {
  forEachMode(body, overrides, undefined, 5)
}

/** `it`, or `it.fails` for a test statements.json records as failing in this mode */
export function test(m: Mode): (title: string, fn: () => Promise<void>, timeout?: number) => void {
  return (title, fn, timeout) => (knownFailure(title, m.name) ? it.fails : it)(title, fn, timeout)
}
