export { loadConfig, settingNames } from './load.ts';
export type { LoadConfigOptions, SettingsSchema } from './load.ts';
export { ConfigError, isConfigError } from './errors.ts';
export type { ConfigIssue } from './errors.ts';
export { commonSettingsSchema } from './common.ts';
export type { CommonSettings } from './common.ts';
export { variableName, isSecretKey, CONFIG_FILE_VARIABLE } from './names.ts';
export { readStackDescriptor, stackDescriptorSchema, type StackDescriptor } from './stack.ts';
