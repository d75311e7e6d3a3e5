/**
 * "Did you mean …?" for a mistyped command (issue 17: a typo must name the closest command in
 * the space notation users type, not oclif's colon ids). Pure: tests call it directly.
 */

/** Levenshtein distance (insert, delete, substitute; each costs 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]
}

/**
 * The known command or topic (ids in oclif's colon form) closest to what was typed (the words
 * oclif could not resolve, e.g. ["devce", "list"]), in space notation ("device list"); undefined
 * when nothing is close enough. A candidate of k words is compared with the first k typed words
 * (the rest may be arguments). The most specific candidate within reach wins ("device creat d1"
 * → "device create", not the topic "device"), then the closest.
 */
export function suggestCommand(typed: readonly string[], known: Iterable<string>): string | undefined {
  let best: { text: string; distance: number; words: number } | undefined
  for (const id of known) {
    const words = id.split(':')
    if (words.length > typed.length) continue
    const text = words.join(' ')
    const distance = editDistance(typed.slice(0, words.length).join(' '), text)
    if (distance > Math.max(1, Math.floor(text.length / 4))) continue
    if (!best || words.length > best.words || (words.length === best.words && distance < best.distance)) best = { text, distance, words: words.length }
  }
  return best?.text
}

/** The two stderr lines for an unknown command: what was typed, and the closest command. */
export function unknownCommandLines(typed: readonly string[], known: Iterable<string>, bin = 'edgemq'): string[] {
  const suggestion = suggestCommand(typed, known)
  return [
    `error: "${bin} ${typed.join(' ')}" is not a command`,
    suggestion ? `hint: did you mean ${suggestion}? See \`${bin} ${suggestion} --help\`` : `hint: see \`${bin} --help\` for the commands`,
  ]
}
