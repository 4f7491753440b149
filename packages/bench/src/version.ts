import { readFileSync } from 'node:fs'

/** The bench package version (src/ and dist/ both sit one level below package.json). */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
})()
