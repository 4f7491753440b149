/** A live progress line on stderr (only when asked or when stderr is a terminal). */
export class Progress {
  private last = 0
  constructor(
    private readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  static auto(flag: boolean | undefined): boolean {
    return flag ?? Boolean(process.stderr.isTTY)
  }

  update(line: string): void {
    if (!this.enabled) return
    const width = this.stream.columns ? this.stream.columns - 1 : 120
    const text = line.length > width ? line.slice(0, width) : line
    this.stream.write(`\r${text}\x1b[K`)
    this.last = text.length
  }

  done(): void {
    if (!this.enabled || this.last === 0) return
    this.stream.write('\r\x1b[K')
    this.last = 0
  }
}

export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US')
