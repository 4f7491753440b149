/**
 * Byte accounting without touching the message path: every accepted socket
 * is tracked, and its kernel-side counters (bytesRead/bytesWritten) are read
 * only when /metrics is scraped.
 */
import type { Socket } from 'node:net'

export class SocketTracker {
  private readonly open = new Set<Socket>()
  private closedRead = 0
  private closedWritten = 0

  /** one listener for every socket of the tracker ('close' is emitted once), not a closure per socket (issue 15) */
  private readonly onClose = ((tracker: SocketTracker) =>
    function closed(this: Socket): void {
      if (!tracker.open.delete(this)) return
      tracker.closedRead += this.bytesRead
      tracker.closedWritten += this.bytesWritten
    })(this)

  track(socket: Socket): void {
    this.open.add(socket)
    socket.on('close', this.onClose)
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
