/**
 * A broker's hooks on every packet of one direction (read: seam/mqtt-parser.ts ParserHooks, written:
 * seam/mqtt-writes.ts), looked up by packet type: a hook given `seeOnly` is called for the packets
 * of its types only. Issue 15: a dozen hooks each called to find a PUBLISH or PUBACK not theirs,
 * twice per QoS 1 delivery each way. Only for a hook that does nothing with the other packets.
 */
export class HooksByCmd<H> {
  /** the hooks of `list` that see only some packet types, and which */
  private readonly only = new Map<H, ReadonlySet<string>>()
  /** by packet type: the hooks of `list` that see it, in order (made at the first packet of the type, again when `list` grew) */
  private readonly byCmd = new Map<string, readonly H[]>()
  private madeOf = 0

  /** `list`: every hook, in order (added to by its owner) */
  constructor(readonly list: H[]) {}

  /** `hook` (one of `list`) sees only the packets whose `cmd` is one of `cmds` */
  seeOnly(hook: H, cmds: readonly string[]): void {
    this.only.set(hook, new Set(cmds))
    this.byCmd.clear()
  }

  /** the hooks a packet of `cmd` goes through, in order */
  for(cmd: string): readonly H[] {
    if (this.madeOf !== this.list.length) {
      this.byCmd.clear()
      this.madeOf = this.list.length
    }
    let hooks = this.byCmd.get(cmd)
    if (hooks === undefined) {
      hooks = this.list.filter((h) => this.only.get(h)?.has(cmd) ?? true)
      this.byCmd.set(cmd, hooks)
    }
    return hooks
  }
}
