// Preloaded (`node --expose-gc --import`) into the `edgemq broker start` process the bench runs:
// SIGUSR2 asks for a full GC and answers on stdout with one JSON line, as the bench's other node
// brokers do (brokers.ts collectGarbage), so the idle-memory row reads the real CLI's heap.
process.on('SIGUSR2', () => {
  globalThis.gc?.()
  process.stdout.write(JSON.stringify({ gc: true, heapUsed: process.memoryUsage().heapUsed }) + '\n')
})
