import { headers as createHeaders } from '@nats-io/transport-node';
import type { MsgHdrs } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamPublishOptions } from '@nats-io/jetstream';
import { PublishError, WrongLastSequenceError } from './errors.ts';
import { injectTraceContext } from './trace.ts';

/** The part of an envelope the bus needs: its id becomes the `Nats-Msg-Id`. */
export interface PublishableEnvelope {
  id: string;
}

export interface PublishOptions {
  /** Extra headers; `Nats-Msg-Id` and the trace context are set by the bus. */
  headers?: Record<string, string> | MsgHdrs;
  /**
   * Stream sequence the stream's last message must have, so a second writer fails with
   * {@link WrongLastSequenceError} instead of appending.
   */
  expectLastSequence?: number;
  /** Time limit for the publish acknowledgement, in milliseconds. */
  timeoutMs?: number;
}

/** The stream's acknowledgement of a publish. */
export interface PublishResult {
  stream: string;
  seq: number;
  /**
   * `true` when the stream already held a message with this id inside its duplicate
   * window: nothing new was stored, and `seq` is the earlier message's sequence.
   */
  duplicate: boolean;
}

function buildHeaders(given: PublishOptions['headers']): MsgHdrs {
  const result = createHeaders();
  if (given === undefined) {
    return result;
  }
  if (
    typeof (given as MsgHdrs).keys === 'function' &&
    typeof (given as MsgHdrs).values === 'function'
  ) {
    const source = given as MsgHdrs;
    for (const name of source.keys()) {
      for (const value of source.values(name)) {
        result.append(name, value);
      }
    }
    return result;
  }
  for (const [name, value] of Object.entries(given as Record<string, string>)) {
    result.set(name, value);
  }
  return result;
}

function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'NoRespondersError' || /no responders/i.test(error.message)) {
      return 'no stream captures this subject (or the user may not publish to it)';
    }
    return error.message;
  }
  return String(error);
}

/**
 * Publishes an envelope as JSON to a JetStream subject and checks the acknowledgement.
 *
 * The envelope id is the `Nats-Msg-Id`, so the stream stores one message per id inside its
 * duplicate window. A repeat returns `duplicate: true`, and the caller must treat it as
 * "already published", never as a fresh success. The active trace context travels in
 * the headers. Raises {@link PublishError} naming the subject and message id, or
 * {@link WrongLastSequenceError} when `expectLastSequence` does not match.
 */
export async function publishEnvelope(
  jetstream: JetStreamClient,
  subject: string,
  envelope: PublishableEnvelope,
  options: PublishOptions = {},
): Promise<PublishResult> {
  if (typeof envelope.id !== 'string' || envelope.id === '') {
    throw new PublishError(subject, String(envelope.id), 'the envelope has no id', {
      code: 'invalid-envelope',
    });
  }

  const messageHeaders = injectTraceContext(buildHeaders(options.headers));
  const publishOptions: Partial<JetStreamPublishOptions> = {
    msgID: envelope.id,
    headers: messageHeaders,
  };
  if (options.expectLastSequence !== undefined) {
    publishOptions.expect = { lastSequence: options.expectLastSequence };
  }
  if (options.timeoutMs !== undefined) {
    publishOptions.timeout = options.timeoutMs;
  }

  try {
    const ack = await jetstream.publish(subject, JSON.stringify(envelope), publishOptions);
    return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
  } catch (error) {
    if (
      error instanceof JetStreamApiError &&
      error.code === JetStreamApiCodes.StreamWrongLastSequence &&
      options.expectLastSequence !== undefined
    ) {
      throw new WrongLastSequenceError(subject, envelope.id, options.expectLastSequence, {
        cause: error,
      });
    }
    throw new PublishError(subject, envelope.id, describeFailure(error), { cause: error });
  }
}
