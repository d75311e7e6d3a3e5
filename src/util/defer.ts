/**
 * A deferral that runs, in order, every callback given to it before `schedule` fires, behind one
 * `schedule` call (one Immediate or tick per batch instead of one per callback). Callbacks given
 * while a batch runs go to the next batch, so nothing recurses.
 */
export function batchedDefer(schedule: (run: () => void) => void): (cb: () => void) => void {
  let queue: (() => void)[] = []
  const run = () => {
    const batch = queue
    queue = []
    for (const cb of batch) cb()
  }
  return (cb) => {
    if (queue.length === 0) schedule(run)
    queue.push(cb)
  }
}
