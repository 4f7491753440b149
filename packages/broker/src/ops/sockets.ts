/**
 * Byte accounting without touching the message path: every accepted socket
 * is tracked, and its kernel-side counters (bytesRead/bytesWritten) are read
 * only when /metrics is scraped.
 */
import type { Socket } from 'node:net'
import { onStreamClose } from '../listeners/close-hooks.js'

export class SocketTracker {
  private readonly open = new Set<Socket>()
  private closedRead = 0
  private closedWritten = 0

  /** one function for every socket of the tracker, not a closure per socket (issue 15) */
  private readonly closed = (socket: Socket): void => {
    if (!this.open.delete(socket)) return
    this.closedRead += socket.bytesRead
    this.closedWritten += socket.bytesWritten
  }

  track(socket: Socket): void {
    this.open.add(socket)
    onStreamClose(socket, this.closed)
  }

  get bytesRead(): number {
    let n = this.closedRead
    for (const s of this.open) n += s.bytesRead
    return n
  }

  get bytesWritten(): number {
    let n = this.closedWritten
    for (const s of this.open) n += s.bytesWritten
    return n
  }

  /** destroy every socket still open (end of the shutdown grace period) */
  destroyAll(): void {
    for (const s of this.open) s.destroy()
  }
}
