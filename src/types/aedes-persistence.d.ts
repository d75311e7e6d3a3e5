// The persistence packages ship no types; edgemq only passes their instances to aedes.
declare module 'aedes-persistence' {
  const memory: () => unknown
  export default memory
}
declare module 'aedes-persistence-level' {
  const level: (db: unknown) => unknown
  export default level
}
