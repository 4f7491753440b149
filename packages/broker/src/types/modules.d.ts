declare module 'aedes-persistence-redis' {
  const factory: (opts: Record<string, unknown>) => unknown
  export default factory
}
