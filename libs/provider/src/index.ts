export * from './errors.ts';
export * from './key-provider.ts';
export * from './capabilities.ts';
