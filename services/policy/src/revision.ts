import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/**
 * Returns whether a KV write failed because the entry's revision changed since it was read (or, for
 * `create`, because the entry already exists). The caller re-reads and decides again.
 */
export function isRevisionConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
