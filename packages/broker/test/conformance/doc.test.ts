/**
 * docs/conformance.md stays current: every statement of statements.json is a row, a tested one
 * names the test files that cite its id and shows "pass" in every mode, every id cited in a test
 * name is a known statement, and the README's Conformance section repeats the doc's count.
 * When this fails, run `npm run conformance`.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const dir = new URL('./', import.meta.url)
const root = new URL('../../../../', import.meta.url)
const read = (u: URL): string => readFileSync(u, 'utf8')

interface Statement {
  id: string
  text: string
  status: 'test' | 'elsewhere' | 'untestable' | 'client'
  note?: string
}
const statements = JSON.parse(read(new URL('statements.json', dir))) as Statement[]

/** id -> files whose test names cite it */
function citations(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.test.ts') && f !== 'doc.test.ts')) {
    for (const [, , title] of read(new URL(file, dir)).matchAll(/\bit\(\s*(['`])(.*?)\1/g)) {
      for (const [, id] of title!.matchAll(/\[(MQTT-[0-9.]+-\d+)\]/g)) {
        if (!out.has(id!)) out.set(id!, new Set())
        out.get(id!)!.add(file)
      }
    }
  }
  return out
}

/** id -> cells of its row in docs/conformance.md */
function rows(): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of read(new URL('docs/conformance.md', root)).split('\n')) {
    const m = /^\| \[(MQTT-[0-9.]+-\d+)\] \| (.*) \|$/.exec(line)
    if (m) out.set(m[1]!, m[2]!.split(/ (?<!\\)\| /))
  }
  return out
}

describe('docs/conformance.md', () => {
  const cited = citations()
  const doc = rows()

  it('statements.json lists each id once', () => {
    const ids = statements.map((s) => s.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const s of statements) expect(s.status === 'test' || !!s.note, `${s.id} needs a note`).toBe(true)
  })

  it('every id cited in a test name is a statement the suite claims to test, and every such statement has a test', () => {
    const known = new Map(statements.map((s) => [s.id, s.status]))
    expect([...cited.keys()].filter((id) => known.get(id) !== 'test')).toEqual([])
    expect(statements.filter((s) => s.status === 'test' && !cited.has(s.id)).map((s) => s.id)).toEqual([])
  })

  it('has one row per statement, naming the test files that cite it, with "pass" in every mode (else run `npm run conformance`)', () => {
    expect([...doc.keys()]).toEqual(statements.map((s) => s.id))
    for (const s of statements) {
      const [text, tests, ...modes] = doc.get(s.id)!
      expect(text, s.id).toBe(s.text.replaceAll('|', '\\|'))
      if (s.status === 'test') {
        const files = new Set([...tests!.matchAll(/([\w-]+\.test\.ts):/g)].map((m) => m[1]))
        expect([...files].sort(), s.id).toEqual([...cited.get(s.id)!].sort())
        expect(modes, s.id).toEqual(['pass', 'pass', 'pass'])
      } else {
        expect(tests, s.id).toContain(s.note!.replaceAll('|', '\\|'))
      }
    }
  })

  it('the README links it under "Conformance" with the same count', () => {
    const summary = read(new URL('docs/conformance.md', root)).split('\n').find((l) => /^\d+ of the \d+ normative statements/.test(l))!
    const tested = statements.filter((s) => s.status === 'test').length
    expect(summary.startsWith(`${tested} of the ${statements.length} normative statements`)).toBe(true)
    const readme = read(new URL('README.md', root))
    const section = readme.slice(readme.indexOf('\n## Conformance\n'), readme.indexOf('<!-- conformance:end -->'))
    expect(section).toContain(summary)
    expect(section).toContain('(docs/conformance.md)')
  })
})
