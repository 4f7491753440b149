/** The JSON report, as one document. */
import type { ScenarioReport, SuiteReport } from './types.js'

export function toJson(report: ScenarioReport | SuiteReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}
