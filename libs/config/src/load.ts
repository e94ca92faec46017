import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import type { ConfigIssue } from './errors.ts';
import { CONFIG_FILE_VARIABLE, SECRET_FILE_SUFFIX, isSecretKey, variableName } from './names.ts';

export type SettingsSchema = z.ZodObject<z.ZodRawShape>;

export interface LoadConfigOptions {
  /** Service name used in error messages. */
  service: string;
  /** Environment to read; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
}

const REDACTED = '<redacted>';

/** A key's value and its source (variable name or file key), for error messages. */
interface SourcedValue {
  value: unknown;
  source: string;
}

type ZodDef = { type: string; innerType?: z.ZodType; in?: z.ZodType };

function definition(schema: z.ZodType): ZodDef {
  return (schema as unknown as { _zod: { def: ZodDef } })._zod.def;
}

/** Returns the zod type name under optional, default, nullable and pipe wrappers. */
function baseType(schema: z.ZodType): string {
  let current = schema;
  for (;;) {
    const def = definition(current);
    if (def.innerType !== undefined) {
      current = def.innerType;
    } else if (def.type === 'pipe' && def.in !== undefined) {
      current = def.in;
    } else {
      return def.type;
    }
  }
}

/**
 * Converts an environment string to the type the schema expects. A value that does not
 * convert is returned unchanged, so validation reports it as received.
 */
function coerce(raw: string, type: string): unknown {
  if (type === 'number') {
    const trimmed = raw.trim();
    const number = Number(trimmed);
    return trimmed !== '' && Number.isFinite(number) ? number : raw;
  }
  if (type === 'boolean') {
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    return raw;
  }
  if (type === 'array') {
    return raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  }
  return raw;
}

function show(key: string, value: unknown): string {
  if (value === undefined) {
    return 'nothing';
  }
  return isSecretKey(key) ? REDACTED : JSON.stringify(value);
}

function readConfigFile(service: string, path: string, keys: Set<string>): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      service,
      [
        {
          source: CONFIG_FILE_VARIABLE,
          expected: 'a readable JSON file',
          received: JSON.stringify(path),
          message: `${CONFIG_FILE_VARIABLE}: cannot read ${JSON.stringify(path)} (${(error as Error).message})`,
        },
      ],
      { cause: error },
    );
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      service,
      [
        {
          source: path,
          expected: 'a JSON object',
          received: 'invalid JSON',
          message: `${path}: invalid JSON (${(error as Error).message})`,
        },
      ],
      { cause: error },
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(service, [
      {
        source: path,
        expected: 'a JSON object',
        received: JSON.stringify(parsed),
        message: `${path}: expected a JSON object of settings, received ${JSON.stringify(parsed)}`,
      },
    ]);
  }

  const unknown = Object.keys(parsed).filter((key) => !keys.has(key));
  if (unknown.length > 0) {
    throw new ConfigError(
      service,
      unknown.map((key) => ({
        source: `${key} in ${path}`,
        expected: `one of ${[...keys].join(', ')}`,
        received: JSON.stringify(key),
        message: `unknown setting "${key}" in ${path}; known settings: ${[...keys].join(', ')}`,
      })),
    );
  }
  return parsed as Record<string, unknown>;
}

function readSecretFile(service: string, variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError(
      service,
      [
        {
          source: variable,
          expected: 'a readable file',
          received: JSON.stringify(path),
          message: `${variable}: cannot read ${JSON.stringify(path)} (${(error as Error).message})`,
        },
      ],
      { cause: error },
    );
  }
}

/**
 * Reads one key from the environment: `<VARIABLE>`, or for a secret `<VARIABLE>_FILE`,
 * unless the schema has its own key for that `_FILE` name. Setting both is an error.
 */
function readEnvValue(
  service: string,
  key: string,
  type: string,
  env: Record<string, string | undefined>,
  variables: Set<string>,
): SourcedValue | undefined {
  const variable = variableName(key);
  const fileVariable = `${variable}${SECRET_FILE_SUFFIX}`;
  const direct = env[variable];
  const fromFile = isSecretKey(key) && !variables.has(fileVariable) ? env[fileVariable] : undefined;

  if (direct !== undefined && fromFile !== undefined) {
    throw new ConfigError(service, [
      {
        source: variable,
        expected: `only one of ${variable} and ${fileVariable}`,
        received: 'both',
        message: `${variable} and ${fileVariable} are both set; set only one of them`,
      },
    ]);
  }
  if (direct !== undefined) {
    return { value: coerce(direct, type), source: variable };
  }
  if (fromFile !== undefined) {
    return {
      value: coerce(readSecretFile(service, fileVariable, fromFile), type),
      source: fileVariable,
    };
  }
  return undefined;
}

function describeBound(origin: string, relation: string, bound: number | bigint): string {
  if (origin === 'string') {
    return `a string of ${relation} ${String(bound)} characters`;
  }
  if (origin === 'array' || origin === 'set') {
    return `${relation} ${String(bound)} items`;
  }
  return `a ${origin} ${relation} ${String(bound)}`;
}

function describeExpected(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected;
    case 'invalid_value':
      return `one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'too_small':
      return describeBound(issue.origin, issue.inclusive ? 'at least' : 'more than', issue.minimum);
    case 'too_big':
      return describeBound(issue.origin, issue.inclusive ? 'at most' : 'less than', issue.maximum);
    case 'invalid_format':
      // A regex check carries its expected form as the message given to `.regex()`.
      return issue.format === 'regex' ? issue.message : `a valid ${issue.format}`;
    default:
      return issue.message;
  }
}

/**
 * Loads and validates a service's settings from `KEYTOWER_*` environment variables and the
 * optional JSON file named by `KEYTOWER_CONFIG_FILE`.
 *
 * The file uses the schema's camelCase keys and may not contain unknown keys. Where the
 * file and the environment both set a key they must agree, so an environment variable
 * never silently overrides the file. Throws {@link ConfigError} naming the variable, the
 * expected value and the received value; secrets are shown as `<redacted>`.
 */
export function loadConfig<S extends SettingsSchema>(
  schema: S,
  options: LoadConfigOptions,
): z.output<S> {
  const { service } = options;
  const env = options.env ?? process.env;
  const shape = schema.shape;
  const keys = new Set(Object.keys(shape));
  const variables = new Set([...keys].map(variableName));

  const configPath = env[CONFIG_FILE_VARIABLE];
  const fileValues =
    configPath === undefined || configPath === '' ? {} : readConfigFile(service, configPath, keys);

  const merged: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const key of keys) {
    const type = baseType(shape[key] as z.ZodType);
    const fromEnv = readEnvValue(service, key, type, env, variables);
    const hasFileValue = Object.hasOwn(fileValues, key);
    const fileSource = `${key} in ${configPath}`;

    if (fromEnv !== undefined && hasFileValue) {
      const fileValue = fileValues[key];
      if (JSON.stringify(fromEnv.value) !== JSON.stringify(fileValue)) {
        throw new ConfigError(service, [
          {
            source: fromEnv.source,
            expected: `the same value as ${fileSource}`,
            received: show(key, fromEnv.value),
            message:
              `${fromEnv.source}=${show(key, fromEnv.value)} disagrees with ` +
              `${fileSource}=${show(key, fileValue)}; remove one of them`,
          },
        ]);
      }
    }

    if (hasFileValue) {
      merged[key] = fileValues[key];
      sources.set(key, fileSource);
    } else if (fromEnv !== undefined) {
      merged[key] = fromEnv.value;
      sources.set(key, fromEnv.source);
    }
  }

  const result = schema.strict().safeParse(merged);
  if (result.success) {
    return result.data as z.output<S>;
  }

  const issues: ConfigIssue[] = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    const source = sources.get(key) ?? variableName(key);
    const expected = describeExpected(issue);
    const received = show(key, merged[key]);
    return {
      source,
      expected,
      received,
      message: `${source}: expected ${expected}, received ${received}`,
    };
  });
  throw new ConfigError(service, issues, { cause: result.error });
}

/**
 * Lists every environment variable a schema reads: one per key, the `_FILE` variant of
 * each secret, and `KEYTOWER_CONFIG_FILE`.
 */
export function settingNames(schema: SettingsSchema): string[] {
  const keys = Object.keys(schema.shape);
  const variables = new Set(keys.map(variableName));
  const names = [CONFIG_FILE_VARIABLE];
  for (const key of keys) {
    const variable = variableName(key);
    names.push(variable);
    const fileVariable = `${variable}${SECRET_FILE_SUFFIX}`;
    if (isSecretKey(key) && !variables.has(fileVariable)) {
      names.push(fileVariable);
    }
  }
  return names;
}
