export { HsmKeyProvider } from './adapter.ts';
export type { HsmKeyProviderOptions } from './adapter.ts';
export { openPkcs11Client } from './client.ts';
export type { Pkcs11Client, Pkcs11ClientOptions, TokenIdentity } from './client.ts';
export { SessionPool } from './session-pool.ts';
export type { LoginOutcome, Pkcs11Module, SessionPoolOptions } from './session-pool.ts';
export { ckrName, mapPkcs11Error } from './errors.ts';
export { hsmSettingsSchema } from './config.ts';
export type { HsmSettings } from './config.ts';
