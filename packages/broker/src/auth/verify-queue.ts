/** bounded concurrency for password checks: scrypt is deliberately expensive */
export class VerifyQueue {
  private active = 0
  private readonly waiting: Array<() => void> = []
  constructor(
    private readonly maxActive: number,
    private readonly maxWaiting: number,
  ) {}

  /** undefined = overloaded, refuse */
  run<T>(fn: () => Promise<T>): Promise<T> | undefined {
    if (this.active >= this.maxActive && this.waiting.length >= this.maxWaiting) return undefined
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.active++
        fn()
          .then(resolve, reject)
          .finally(() => {
            this.active--
            this.waiting.shift()?.()
          })
      }
      if (this.active < this.maxActive) start()
      else this.waiting.push(start)
    })
  }
}
