/** Flags of `edgemq dps …`, named as `az iot dps …` names them (long names and az's short aliases). */
import { Flags } from '@oclif/core'

import { REPROVISION_POLICIES, type EnrollmentFlags } from '../dps/cli-input.js'

/**
 * az's `--dps-name/-n`, `--resource-group/-g` and `--auth-type`: accepted and ignored (there is one local
 * DPS per hub); `-l/--login` must be one of its connection strings (BaseCommand.dps() checks it).
 */
export const dpsScopeFlags = {
  'dps-name': Flags.string({ char: 'n', summary: 'DPS name (accepted for az parity; the hub in --home has one DPS).' }),
  'resource-group': Flags.string({ char: 'g', summary: 'Resource group (accepted for az parity, ignored).' }),
  login: Flags.string({ char: 'l', summary: 'A DPS connection string (az --login): must be one of this DPS\'s policies with its key.' }),
  'auth-type': Flags.option({ options: ['key', 'login'] as const, summary: 'Accepted for az parity (edgemq uses the DPS policy keys).' })(),
}


export const enrollmentIdFlag = Flags.string({ aliases: ['eid'], summary: 'Enrollment id (the registration id of an individual enrollment).', required: true })
export const groupIdFlag = Flags.string({ aliases: ['eid', 'group-id', 'gid'], summary: 'Enrollment group id.', required: true })
export const etagFlag = Flags.string({ char: 'e', summary: 'Only act if the document still has this etag.' })

/** What create and update share (update takes each as a change). */
export const enrollmentFlags = {
  ...dpsScopeFlags,
  'attestation-type': Flags.string({ aliases: ['at'], summary: 'symmetrickey | x509 (tpm is refused: no TPM here).' }),
  'primary-key': Flags.string({ aliases: ['pk'], summary: 'Primary symmetric key (base64; generated when omitted).' }),
  'secondary-key': Flags.string({ aliases: ['sk'], summary: 'Secondary symmetric key.' }),
  'certificate-path': Flags.string({ aliases: ['cp'], summary: 'Primary certificate (.pem or .cer): the device certificate, or a group\'s CA.' }),
  'secondary-certificate-path': Flags.string({ aliases: ['scp'], summary: 'Secondary certificate.' }),
  'initial-twin-tags': Flags.string({ aliases: ['tags'], summary: 'Initial twin tags: JSON, or @file.' }),
  'initial-twin-properties': Flags.string({ aliases: ['props'], summary: 'Initial desired properties: JSON, or @file.' }),
  'edge-enabled': Flags.option({ aliases: ['ee'], options: ['true', 'false'] as const, summary: 'Provision an IoT Edge device.' })(),
  'provisioning-status': Flags.option({ aliases: ['ps'], options: ['enabled', 'disabled'] as const, summary: 'enabled (default) | disabled (registrations are refused, 401002).' })(),
  'reprovision-policy': Flags.option({ aliases: ['rp'], options: REPROVISION_POLICIES as ['reprovisionandmigratedata', 'reprovisionandresetdata', 'never'], summary: 'What a re-registration does to the device data.' })(),
  'iot-hub-host-name': Flags.string({ aliases: ['hn'], summary: 'Accepted for az parity; devices are assigned to the local hub.' }),
  'allocation-policy': Flags.string({ aliases: ['ap'], summary: 'Accepted for az parity; there is one hub to allocate to.' }),
  'parent-device-id': Flags.string({ aliases: ['pd'], summary: 'Parent IoT Edge device of the provisioned identity (edgemq extension).' }),
}

export const groupAttestationFlags = {
  'root-ca-name': Flags.string({ aliases: ['ca-name', 'cn'], summary: 'Verified CA the devices chain to: any name means the hub CA (edgemq has one).' }),
  'secondary-root-ca-name': Flags.string({ aliases: ['scn', 'secondary-ca-name'], summary: 'Secondary CA name.' }),
}

type Parsed = { [K in keyof typeof enrollmentFlags]?: string } & { 'device-id'?: string; 'root-ca-name'?: string; 'secondary-root-ca-name'?: string }

export function enrollmentFlagValues(f: Parsed): EnrollmentFlags {
  return {
    attestationType: f['attestation-type'],
    primaryKey: f['primary-key'],
    secondaryKey: f['secondary-key'],
    certificatePath: f['certificate-path'],
    secondaryCertificatePath: f['secondary-certificate-path'],
    caName: f['root-ca-name'],
    secondaryCaName: f['secondary-root-ca-name'],
    deviceId: f['device-id'],
    initialTwinTags: f['initial-twin-tags'],
    initialTwinProperties: f['initial-twin-properties'],
    edgeEnabled: f['edge-enabled'],
    provisioningStatus: f['provisioning-status'],
    reprovisionPolicy: f['reprovision-policy'],
    parentDeviceId: f['parent-device-id'],
  }
}

/** `-o table` columns. */
export const ENROLLMENT_COLUMNS = ['registrationId', 'deviceId', 'attestation.type', 'provisioningStatus', 'registrationState.status']
export const GROUP_COLUMNS = ['enrollmentGroupId', 'attestation.type', 'provisioningStatus', 'capabilities.iotEdge']
export const REGISTRATION_COLUMNS = ['registrationId', 'deviceId', 'status', 'substatus', 'assignedHub']
