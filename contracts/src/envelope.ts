import { z } from 'zod';
import { MESSAGE_ID_PATTERN } from './ids.ts';

/**
 * The v1 envelope: CloudEvents 1.0 structured JSON plus keytower's `actor`, `correlationid`,
 * `causationid` and `signature` extension attributes.
 */

/** Actor identities: `user:<name>`, `service:<name>` or `system:<name>`. */
export const ACTOR_PATTERN = /^(user|service|system):[A-Za-z0-9._@-]{1,128}$/;

/** The `type` attribute: `keytower.<kind>.<name>.v<version>`. */
export const MESSAGE_TYPE_PATTERN = /^keytower\.[a-z-]+(\.[a-z-]+)*\.v[1-9][0-9]*$/;

export const envelopeBaseSchema = z
  .object({
    specversion: z.literal('1.0'),
    id: z.string().regex(MESSAGE_ID_PATTERN, 'letters, digits, "_" or "-", 1 to 128 characters'),
    source: z.string().min(1).max(256),
    type: z.string().regex(MESSAGE_TYPE_PATTERN, 'a type like keytower.command.key.create.v1'),
    time: z.iso.datetime({ offset: true }),
    subject: z.string().min(1).max(128),
    datacontenttype: z.literal('application/json'),
    data: z.unknown(),
    actor: z.string().regex(ACTOR_PATTERN, 'an actor like user:alice or system:scheduler'),
    correlationid: z.string().min(1).max(128),
    causationid: z.string().min(1).max(128).optional(),
    signature: z.string().min(1).max(4096).optional(),
  })
  .strict();

/** An envelope with its data still unchecked. */
export type RawEnvelope = z.infer<typeof envelopeBaseSchema>;

/** An envelope whose data matched the schema of its type. */
export type Envelope<Data = unknown> = Omit<RawEnvelope, 'data'> & { data: Data };

/** Builds the envelope schema of one message type with its data schema. */
export function envelopeSchemaFor<Data extends z.ZodType>(fullType: string, data: Data) {
  return envelopeBaseSchema.extend({ type: z.literal(fullType), data });
}
