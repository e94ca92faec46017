/**
 * The fixed vocabulary of keytower's public API: providers, key actions, events, algorithms.
 * Every schema, subject and permission is derived from these lists, so adding a value here is
 * the one place a new provider or action enters the contracts.
 */

/** Key providers keytower drives, each through its own connector service. */
export const PROVIDERS = ['hsm', 'aws', 'azure', 'gcp', 'oci'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** Key lifecycle commands (requests). */
export const KEY_ACTIONS = [
  'create',
  'rotate',
  'disable',
  'enable',
  'schedule-destroy',
  'cancel-destroy',
  'destroy',
  'import',
  'tag',
] as const;
export type KeyAction = (typeof KEY_ACTIONS)[number];

/** Key lifecycle events (facts in the past tense). */
export const KEY_EVENTS = [
  'created',
  'version-created',
  'disabled',
  'enabled',
  'destroy-scheduled',
  'destroy-cancelled',
  'destroyed',
  'imported',
  'tagged',
  'compromised',
] as const;
export type KeyEventName = (typeof KEY_EVENTS)[number];

/** Key purposes: encryption or signing. */
export const KEY_PURPOSES = ['encrypt', 'sign'] as const;
export type KeyPurpose = (typeof KEY_PURPOSES)[number];

/** Key algorithms and sizes keytower can ask a provider for. */
export const KEY_ALGORITHMS = ['AES_256', 'EC_P256', 'RSA_3072'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** Algorithms allowed for each purpose: AES for encryption, EC and RSA key pairs for signing. */
export const ALGORITHMS_BY_PURPOSE: Readonly<Record<KeyPurpose, readonly KeyAlgorithm[]>> = {
  encrypt: ['AES_256'],
  sign: ['EC_P256', 'RSA_3072'],
};

/** Identities of keytower's own internal actors. */
export const SYSTEM_ACTORS = ['system:scheduler', 'system:incident', 'system:policy'] as const;

/** The default pending window before a scheduled destruction may run: 7 days. */
export const DEFAULT_PENDING_WINDOW_SECONDS = 7 * 24 * 3600;
/** The shortest pending window a production deployment accepts: 7 days. */
export const MIN_PENDING_WINDOW_SECONDS = 7 * 24 * 3600;
/** The maximum pending window keytower accepts: 30 days. */
export const MAX_PENDING_WINDOW_SECONDS = 30 * 24 * 3600;
/** The floor of the pending window under an explicit test profile: 1 second. */
export const TEST_PROFILE_MIN_PENDING_WINDOW_SECONDS = 1;
