/**
 * `method serve --exec <command>`: a direct method answered by a shell command. The method name
 * is in $EDGEMQ_METHOD, the request payload (JSON) on stdin; stdout (JSON, else its text) is the
 * answer, exit code 0 → `okStatus`, anything else → 500. Runs asynchronously: calls do not block
 * each other or the MQTT connection's keepalive.
 */
import { spawn } from 'node:child_process'

import type { MethodRequest } from './device-client.js'

export function execMethod(command: string, req: MethodRequest, okStatus: number): Promise<{ status: number; payload: unknown }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { env: { ...process.env, EDGEMQ_METHOD: req.name }, stdio: ['pipe', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.on('error', reject)
    // EPIPE when the command does not read its stdin is harmless.
    child.stdin.on('error', () => undefined)
    child.stdin.end(JSON.stringify(req.payload))
    child.on('close', (code) => {
      let payload: unknown = stdout.trim()
      try {
        payload = JSON.parse(stdout)
      } catch {
        /* a text answer */
      }
      resolve({ status: code === 0 ? okStatus : 500, payload })
    })
  })
}
