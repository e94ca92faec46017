/**
 * The stack descriptor: the endpoints and credentials of a running local stack, written by
 * `deploy/local/stack.ts up` to `.data/<profile>/stack.json`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const natsCredentialSchema = z
  .object({ user: z.string().min(1), password: z.string().min(1) })
  .strict();

export const stackDescriptorSchema = z
  .object({
    profile: z.string().min(1),
    nats: z
      .object({
        url: z.string().startsWith('nats://'),
        users: z.record(z.string(), natsCredentialSchema),
      })
      .strict(),
    clickhouse: z
      .object({
        url: z.url(),
        database: z.string().min(1),
        user: z.string().min(1),
        password: z.string(),
      })
      .strict(),
    kafka: z
      .object({
        brokers: z.array(z.string().min(1)).min(1),
        topic: z.string().min(1),
      })
      .strict(),
    hsm: z
      .object({
        module: z.string().min(1),
        softhsm2Conf: z.string().min(1),
        tokenLabel: z.string().min(1),
        pinFile: z.string().min(1),
        soPinFile: z.string().min(1),
      })
      .strict(),
    secretsDir: z.string().min(1),
  })
  .strict();

/** Endpoints and credentials of a running local stack (`.data/<profile>/stack.json`). */
export type StackDescriptor = z.infer<typeof stackDescriptorSchema>;

const PROFILE_NAME = /^[a-z][a-z0-9-]*$/;

function descriptorPath(profileOrPath: string | undefined): string {
  if (profileOrPath !== undefined && PROFILE_NAME.test(profileOrPath)) {
    return join(REPO_ROOT, '.data', profileOrPath, 'stack.json');
  }
  const path =
    profileOrPath ?? process.env.KEYTOWER_STACK_FILE ?? join('.data', 'test', 'stack.json');
  return isAbsolute(path) ? path : join(REPO_ROOT, path);
}

function profileHint(path: string): string {
  const match = /\.data\/([a-z][a-z0-9-]*)\/stack\.json$/.exec(path);
  return match?.[1] ?? 'test';
}

/**
 * Reads and validates a stack descriptor. The argument is a profile name (`test`, `dev`, …) or a
 * file path, where a relative path starts at the repository root. Without it, the file is
 * `KEYTOWER_STACK_FILE`, else `.data/test/stack.json`. A missing file fails with the command that
 * starts the stack, and an invalid one with every invalid field.
 */
export function readStackDescriptor(profileOrPath?: string): StackDescriptor {
  const path = descriptorPath(profileOrPath);
  if (!existsSync(path)) {
    throw new Error(
      `stack descriptor ${path} not found: start the stack with \`npm run stack -- up --profile ${profileHint(path)}\``,
    );
  }

  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`stack descriptor ${path} is not valid JSON`, { cause: error });
  }

  const parsed = stackDescriptorSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new Error(`stack descriptor ${path} is invalid: ${issues.join('; ')}`);
  }
  return parsed.data;
}
