/**
 * The checks that keep a conformance page current (docs/conformance.md for MQTT 3.1.1,
 * docs/conformance-v5.md for MQTT 5): every statement of the suite's statements.json is a row, a
 * tested one names the test files that cite its id and shows "pass" in every mode (or, for a
 * suite that allows known failures, "**fail**" exactly in the modes statements.json records), every
 * id cited in a test name is a statement the suite claims to test, and the README's Conformance
 * section repeats the page's summary. When this fails, run `npm run conformance`.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const root = new URL('../../../../', import.meta.url)
const read = (u: URL): string => readFileSync(u, 'utf8')
const MODES = ['memory', 'redis', 'two-nodes']

interface Failure {
  modes: string[]
  test: string
  why: string
}
interface Statement {
  id: string
  text: string
  status: 'test' | 'elsewhere' | 'untestable' | 'client' | 'open'
  note?: string
  fails?: Failure[]
}

export interface DocSpec {
  /** the suite's folder (statements.json and the *.test.ts files) */
  dir: URL
  /** the page, from the repository root */
  page: string
  /** the README markers its summary sits between */
  readme: { start: string; end: string }
  /** statuses statements.json may use */
  statuses: Statement['status'][]
  /** statements may record known failures (`fails`), shown as "**fail**" */
  knownFailures: boolean
}

/**
 * The test names of the suite, with their file: every `it(...)` title, and the first string of
 * each row of a table of cases (`['[MQTT-x.y.z-n] what', ...]`, one `it` per row: the rest of its
 * name comes from the loop)
 */
function tests(dir: URL): Array<{ file: string; title: string; ids: string[] }> {
  const out = []
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.test.ts') && f !== 'doc.test.ts')) {
    const text = read(new URL(file, dir))
    const titles = [...text.matchAll(/\bit\(\s*(['`])(.*?)\1/g), ...text.matchAll(/^\s*\[\s*(['`])(\[MQTT-.*?)\1\s*,/gm)].map((m) => m[2]!)
    for (const title of titles) out.push({ file, title, ids: [...title.matchAll(/\[(MQTT-[0-9.]+-\d+)\]/g)].map((m) => m[1]!) })
  }
  return out
}

/** id -> cells of its row on the page */
function rows(page: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of read(new URL(page, root)).split('\n')) {
    const m = /^\| \[(MQTT-[0-9.]+-\d+)\] \| (.*) \|$/.exec(line)
    if (m) out.set(m[1]!, m[2]!.split(/ (?<!\\)\| /))
  }
  return out
}

export function checkConformanceDoc(spec: DocSpec): void {
  describe(spec.page, () => {
    const statements = JSON.parse(read(new URL('statements.json', spec.dir))) as Statement[]
    const all = tests(spec.dir)
    const cited = new Map<string, Set<string>>()
    for (const t of all) for (const id of t.ids) cited.set(id, (cited.get(id) ?? new Set()).add(t.file))
    const doc = rows(spec.page)

    it('statements.json lists each id once, each with a known status, and a note unless tested', () => {
      const ids = statements.map((s) => s.id)
      expect(new Set(ids).size).toBe(ids.length)
      for (const s of statements) {
        expect(spec.statuses, s.id).toContain(s.status)
        expect(s.status === 'test' || !!s.note, `${s.id} needs a note`).toBe(true)
        if (!spec.knownFailures) expect(s.fails, s.id).toBeUndefined()
      }
    })

    it('every id cited in a test name is a statement the suite claims to test, and every such statement has a test', () => {
      const known = new Map(statements.map((s) => [s.id, s.status]))
      expect([...cited.keys()].filter((id) => known.get(id) !== 'test')).toEqual([])
      expect(statements.filter((s) => s.status === 'test' && !cited.has(s.id)).map((s) => s.id)).toEqual([])
    })

    it('a known failure names a test citing its statement, and that test cites no statement it does not fail', () => {
      const byId = new Map(statements.map((s) => [s.id, s]))
      for (const s of statements) {
        for (const f of s.fails ?? []) {
          const matched = all.filter((t) => t.ids.includes(s.id) && t.title.includes(f.test))
          expect(matched.length, `${s.id}: no test named like "${f.test}"`).toBeGreaterThan(0)
          for (const t of matched) {
            for (const other of t.ids) {
              const same = byId.get(other)?.fails?.some((g) => g.test === f.test && g.modes.join() === f.modes.join())
              expect(same, `"${t.title}" runs as a known failure of ${s.id}, so ${other} must record the same failure`).toBe(true)
            }
          }
        }
      }
    })

    it('has one row per statement, naming the test files that cite it, with its result in every mode (else run `npm run conformance`)', () => {
      expect([...doc.keys()]).toEqual(statements.map((s) => s.id))
      for (const s of statements) {
        const [text, tested, ...modes] = doc.get(s.id)!
        expect(text, s.id).toBe(s.text.replaceAll('|', '\\|'))
        if (s.status === 'test') {
          const files = new Set([...tested!.matchAll(/([\w-]+\.test\.ts):/g)].map((m) => m[1]))
          expect([...files].sort(), s.id).toEqual([...cited.get(s.id)!].sort())
          const failing = new Set((s.fails ?? []).flatMap((f) => f.modes))
          expect(modes, s.id).toEqual(MODES.map((m) => (failing.has(m) ? '**fail**' : 'pass')))
          for (const f of s.fails ?? []) expect(tested, s.id).toContain(f.why.replaceAll('|', '\\|'))
        } else {
          expect(tested, s.id).toContain(s.note!.replaceAll('|', '\\|'))
        }
      }
    })

    it('the README repeats its summary and links it', () => {
      const summary = read(new URL(spec.page, root)).split('\n').find((l) => /^\d+ of the \d+ normative statements/.test(l))!
      const tested = statements.filter((s) => s.status === 'test').length
      expect(summary.startsWith(`${tested} of the ${statements.length} normative statements`)).toBe(true)
      const readme = read(new URL('README.md', root))
      const section = readme.slice(readme.indexOf('\n## Conformance\n'))
      const block = section.slice(section.indexOf(spec.readme.start), section.indexOf(spec.readme.end))
      expect(block).toContain(summary)
      expect(block).toContain(`(${spec.page})`)
    })
  })
}
