export { connectBus } from './connection.ts';
export type { Bus, ConnectOptions } from './connection.ts';
export { publishEnvelope } from './publish.ts';
export type { PublishableEnvelope, PublishOptions, PublishResult } from './publish.ts';
export { consume, retryDelayMs } from './consumer.ts';
export type {
  BusMessage,
  ConsumeOptions,
  MessageHandler,
  RetryBackoff,
  RunningConsumer,
} from './consumer.ts';
export { DEAD_LETTER_TYPE, deadLetterId, publishDeadLetter } from './dead-letter.ts';
export type { DeadLetterInput, DeadLetterReason } from './dead-letter.ts';
export { provision } from './provision.ts';
export type { ProvisionOptions, ProvisionReport } from './provision.ts';
export { acquireLease } from './lease.ts';
export type { Lease, LeaseOptions, LeaseRecord } from './lease.ts';
export { runService } from './service.ts';
export type {
  RunningService,
  ServiceContext,
  ServiceDefinition,
  StartedService,
} from './service.ts';
export { injectTraceContext, extractTraceContext } from './trace.ts';
export {
  BusError,
  PublishError,
  WrongLastSequenceError,
  NotProvisionedError,
  RetryableError,
  PermanentError,
  ProvisionConflictError,
  LeaseHeldError,
  LeaseLostError,
  isBusError,
  isPublishError,
  isWrongLastSequenceError,
  isNotProvisionedError,
  isRetryableError,
  isPermanentError,
  isProvisionConflictError,
  isLeaseHeldError,
  isLeaseLostError,
  isNotFound,
} from './errors.ts';
export { runAsLeader } from './leadership.ts';
export type { LeaderWork, LeadershipOptions } from './leadership.ts';
