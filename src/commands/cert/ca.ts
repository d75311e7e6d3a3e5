import { Flags } from '@oclif/core'

import { hubPki } from '../../cert/index.js'
import { BaseCommand } from '../../cli/base.js'

export default class CertCa extends BaseCommand<typeof CertCa> {
  static summary = "Print the path of the hub's root CA certificate (PEM), creating the local PKI on first use."
  static description =
    'The path alone, so it fits `--cafile "$(edgemq cert ca)"` (mosquitto_pub/sub, edgemq pub/sub); --pem prints the certificate itself. ' +
    'The CA and the broker\'s server certificate live in <home>/pki (keys 0600). -o does not apply: the output is made for $(…).'
  static examples = [
    '<%= config.bin %> cert ca',
    'mosquitto_sub -p 8883 --cafile "$(<%= config.bin %> cert ca)" -t "#" -i sub_client -u "edgemq.azure-devices.net/sub_client/?api-version=2018-06-30" -P "$(<%= config.bin %> sas --device sub_client --raw)"',
    '<%= config.bin %> cert ca --pem > hub-ca.pem',
  ]
  static flags = {
    pem: Flags.boolean({ summary: 'Print the CA certificate PEM instead of its path.' }),
  }

  async run(): Promise<void> {
    const pki = await hubPki(await this.hub())
    // PEM already ends with a newline; log() adds another, so trim it.
    this.log(this.flags.pem ? pki.caPem.trimEnd() : pki.caCertPath)
  }
}
