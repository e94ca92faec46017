/** Writes the stack descriptor `.data/<profile>/stack.json` that services and tests read endpoints from. */
import { rmSync, writeFileSync } from 'node:fs';
import type { StackDescriptor } from '@keytower/config';
import { CLICKHOUSE_DATABASE } from './clickhouse.ts';
import { KAFKA_AUDIT_TOPIC } from './kafka.ts';
import { natsCredentials } from './nats.ts';
import type { Profile } from './profile.ts';
import { HSM_TOKEN_LABEL, hsmPinFile, hsmSoPinFile, softhsmConfFile } from './softhsm.ts';
import { SOFTHSM_MODULE } from './versions.ts';

export function buildDescriptor(profile: Profile, natsUsers: readonly string[]): StackDescriptor {
  return {
    profile: profile.name,
    nats: {
      url: `nats://127.0.0.1:${profile.ports.nats}`,
      users: natsCredentials(profile, natsUsers),
    },
    clickhouse: {
      url: `http://127.0.0.1:${profile.ports.clickhouseHttp}`,
      database: CLICKHOUSE_DATABASE,
      user: 'default',
      password: '',
    },
    kafka: {
      brokers: [`127.0.0.1:${profile.ports.kafka}`],
      topic: KAFKA_AUDIT_TOPIC,
    },
    hsm: {
      module: SOFTHSM_MODULE,
      softhsm2Conf: softhsmConfFile(profile),
      tokenLabel: HSM_TOKEN_LABEL,
      pinFile: hsmPinFile(profile),
      soPinFile: hsmSoPinFile(profile),
    },
    secretsDir: profile.secretsDir,
  };
}

/** Writes the descriptor with mode 0600, because it contains the NATS passwords. */
export function writeDescriptor(profile: Profile, descriptor: StackDescriptor): void {
  writeFileSync(profile.descriptorFile, `${JSON.stringify(descriptor, null, 2)}\n`, {
    mode: 0o600,
  });
}

export function removeDescriptor(profile: Profile): void {
  rmSync(profile.descriptorFile, { force: true });
}
