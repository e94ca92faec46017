export { createOperationHandler, startConnectorRuntime } from './runtime.ts';
export type { ConnectorRuntime, ConnectorRuntimeOptions } from './runtime.ts';
export { performOperation } from './dispatch.ts';
export type { Outcome } from './dispatch.ts';
export { DEFAULT_RETRY_POLICY, RETRY_RULES, RetryPolicy } from './retry-policy.ts';
export type { RetryDecision, RetryPolicyOptions, RetryRule } from './retry-policy.ts';
export { CircuitBreaker, DEFAULT_CIRCUIT_BREAKER } from './circuit-breaker.ts';
export type { CircuitBreakerOptions, CircuitState } from './circuit-breaker.ts';
export { publishCapabilities } from './capabilities.ts';
