/** pino JSON logger. The message path never logs at info or above per message. */
import { pino, type Logger } from 'pino'

export type { Logger }

export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node_id: nodeId, pid: process.pid } })
}
