import { Flags } from '@oclif/core'

import { makeDeviceCert } from '../../cert/index.js'
import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags } from '../../cli/flags.js'
import { UsageError } from '../../errors.js'

export default class CertDevice extends BaseCommand<typeof CertDevice> {
  static summary = 'Make a client certificate and key for a device: from the hub CA (x509-ca) or self-signed (x509-thumbprint).'
  static description =
    'Writes <device>.cert.pem and <device>.key.pem (0600) into --out (default <home>/certs) and prints ' +
    '{certFile, keyFile, thumbprints: {sha1, sha256}, …}. A device registered as x509-thumbprint gets a self-signed certificate ' +
    'without --self-signed. --register creates the device (x509-thumbprint or x509-ca) or sets its primary thumbprint to the ' +
    'new SHA-256 thumbprint, so the certificate works at once; without it the registry is not changed.'
  static examples = [
    '<%= config.bin %> cert device --device cam1 --self-signed --register --out ./certs',
    '<%= config.bin %> cert device --device cam2 --register   # x509-ca: issued by the hub CA',
    'mosquitto_pub -p 8883 --cafile "$(<%= config.bin %> cert ca)" --cert ./certs/cam1.cert.pem --key ./certs/cam1.key.pem -i cam1 -u "edgemq.azure-devices.net/cam1/?api-version=2018-06-30" -t "devices/cam1/messages/events/" -m hi',
  ]
  static flags = {
    device: deviceFlag,
    'self-signed': Flags.boolean({ summary: 'Self-signed (x509-thumbprint) instead of issued by the hub CA.' }),
    out: Flags.string({ aliases: ['od', 'output-dir'], summary: 'Directory for the cert and key files (default <home>/certs).' }),
    register: Flags.boolean({ summary: 'Create the device, or set its primary thumbprint, so this certificate authenticates it.' }),
    days: Flags.integer({ summary: 'Validity in days (default 365).', min: 1, max: 3650 }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    if (!f.device) throw new UsageError('missing --device', 'pass the device id with --device (or -d)')
    await this.checkHubName(f['hub-name'])
    const result = await makeDeviceCert(await this.hub(), {
      deviceId: f.device,
      // Only an explicit --self-signed forces it; otherwise the device's auth type decides.
      selfSigned: f['self-signed'] ? true : undefined,
      outDir: f.out,
      register: f.register,
      days: f.days,
    })
    for (const w of result.warnings) this.logToStderr(`warning: ${w}`)
    this.print(result, { columns: ['deviceId', 'issuer', 'certFile', 'keyFile', 'thumbprints.sha1', 'thumbprints.sha256', 'registration'] })
  }
}
