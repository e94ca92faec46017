import type { KV, KvEntry } from '@nats-io/kv';
import { BUCKETS } from '@keytower/contracts';
import type { Bus } from './connection.ts';
import { LeaseHeldError, LeaseLostError } from './errors.ts';

export interface LeaseOptions {
  /** Lease name, the KV key; for example `audit-writer`. */
  name: string;
  /** Id of this instance, unique among contenders; for example `<host>-<pid>`. */
  holder: string;
  /** How long the lease lasts without renewal, in seconds. */
  ttlSeconds: number;
  /** Bucket holding leases; defaults to `kms_leases`. */
  bucket?: string;
}

/** The value stored under a lease's key. */
export interface LeaseRecord {
  holder: string;
  /** When the lease ends unless renewed, as an ISO 8601 time of the holder's clock. */
  expiresAt: string;
  acquiredAt: string;
}

/** A lease this instance holds until `lost` is aborted or it is released. */
export interface Lease {
  readonly name: string;
  readonly holder: string;
  /**
   * KV revision of the write that granted the lease. It grows with every grant, so a
   * resource can reject writes carrying a lower token than the last one it saw.
   */
  readonly fencingToken: number;
  /** Aborted when a renewal fails, the entry shows another holder, or the lease is released. */
  readonly lost: AbortSignal;
  /**
   * Whether the lease is still held: not lost, and the local clock is before the expiry of
   * the last successful write minus a safety margin. A process that was paused past its
   * expiry reads `false` at once, before its next renewal runs.
   */
  readonly held: boolean;
  /** Renews now; renewal also runs by itself every third of the TTL. Raises if lost. */
  renew(): Promise<void>;
  /** Stops renewing and deletes the entry if this holder still owns it. */
  release(): Promise<void>;
}

const encoder = new TextEncoder();

function decodeRecord(entry: KvEntry): LeaseRecord | undefined {
  try {
    const parsed = entry.json<Partial<LeaseRecord>>();
    if (typeof parsed.holder === 'string' && typeof parsed.expiresAt === 'string') {
      return parsed as LeaseRecord;
    }
  } catch {
    // A value that is not a lease record is treated as expired, so it can be taken over.
  }
  return undefined;
}

function encodeRecord(record: LeaseRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

function isLive(entry: KvEntry | null): entry is KvEntry {
  return entry !== null && entry.operation === 'PUT';
}

/**
 * Takes the lease entry by compare-and-set: `create` when the key is absent or deleted,
 * `update` on the read revision when the current record expired or is ours. Returns the
 * granting revision. Another holder writing first makes the CAS fail, so two contenders
 * can never both be granted the same revision.
 */
async function claim(kv: KV, options: LeaseOptions, now: number): Promise<number> {
  const record: LeaseRecord = {
    holder: options.holder,
    acquiredAt: new Date(now).toISOString(),
    expiresAt: new Date(now + options.ttlSeconds * 1_000).toISOString(),
  };
  const entry = await kv.get(options.name);

  try {
    if (!isLive(entry)) {
      return await kv.create(options.name, encodeRecord(record));
    }
    const current = decodeRecord(entry);
    const expired = current === undefined || Date.parse(current.expiresAt) <= now;
    if (!expired && current.holder !== options.holder) {
      throw new LeaseHeldError(options.name, current.holder, current.expiresAt);
    }
    return await kv.update(options.name, encodeRecord(record), entry.revision);
  } catch (error) {
    if (error instanceof LeaseHeldError) {
      throw error;
    }
    // The compare-and-set failed: someone wrote between our read and our write.
    const latest = await kv.get(options.name).catch(() => null);
    const winner = isLive(latest) ? decodeRecord(latest) : undefined;
    throw new LeaseHeldError(
      options.name,
      winner?.holder ?? 'another holder',
      winner?.expiresAt ?? 'unknown',
      { cause: error },
    );
  }
}

/**
 * Acquires a lease in the `kms_leases` bucket, or raises {@link LeaseHeldError} when another
 * holder has it and its lease has not expired.
 *
 * KV entries in that bucket do not expire by themselves, so the record carries `expiresAt`
 * and a contender takes over an expired record only by compare-and-set on its revision.
 * The lease renews every third of the TTL. A renewal that fails (another holder's
 * write, or an error) aborts `lost`. Holders must compare clocks for expiry, so contenders
 * should run on hosts with synchronised clocks; the fencing token protects the resource
 * either way.
 */
export async function acquireLease(bus: Bus, options: LeaseOptions): Promise<Lease> {
  if (!(options.ttlSeconds > 0)) {
    throw new RangeError(`ttlSeconds must be positive, received ${options.ttlSeconds}`);
  }
  const kv = await bus.kv(options.bucket ?? BUCKETS.leases);
  const ttlMs = options.ttlSeconds * 1_000;
  // A holder stops believing it holds the lease this long before the stored expiry.
  const marginMs = Math.min(1_000, ttlMs / 10);
  const logger = bus.logger.child({ lease: options.name, holder: options.holder });

  const startedAt = Date.now();
  const fencingToken = await claim(kv, options, startedAt);
  let revision = fencingToken;
  let validUntil = startedAt + ttlMs - marginMs;
  const lost = new AbortController();
  logger.info({ fencingToken, ttlSeconds: options.ttlSeconds }, 'lease acquired');

  function markLost(detail: string, cause?: unknown): void {
    if (lost.signal.aborted) {
      return;
    }
    clearInterval(timer);
    lost.abort(new LeaseLostError(options.name, detail, { cause }));
    logger.warn({ err: cause, fencingToken }, `lease lost: ${detail}`);
  }

  async function renew(): Promise<void> {
    if (lost.signal.aborted) {
      throw lost.signal.reason;
    }
    // The expiry is computed from the time before the write, so the local view never
    // outlasts what the stored record promises to other contenders.
    const now = Date.now();
    if (now >= validUntil + marginMs) {
      markLost('the lease expired before it could be renewed');
      throw lost.signal.reason;
    }
    const record: LeaseRecord = {
      holder: options.holder,
      acquiredAt: new Date(startedAt).toISOString(),
      expiresAt: new Date(now + ttlMs).toISOString(),
    };
    try {
      revision = await kv.update(options.name, encodeRecord(record), revision);
      validUntil = now + ttlMs - marginMs;
    } catch (error) {
      const latest = await kv.get(options.name).catch(() => null);
      const current = isLive(latest) ? decodeRecord(latest) : undefined;
      const detail =
        current !== undefined && current.holder !== options.holder
          ? `the entry now shows holder ${current.holder}`
          : 'the renewal failed';
      markLost(detail, error);
      throw lost.signal.reason;
    }
  }

  const timer = setInterval(() => {
    renew().catch(() => {
      // markLost already recorded and logged the loss.
    });
  }, ttlMs / 3);
  timer.unref();

  return {
    name: options.name,
    holder: options.holder,
    fencingToken,
    lost: lost.signal,
    get held() {
      return !lost.signal.aborted && Date.now() < validUntil;
    },
    renew,
    async release() {
      clearInterval(timer);
      if (lost.signal.aborted) {
        return;
      }
      lost.abort(new LeaseLostError(options.name, 'released'));
      try {
        await kv.delete(options.name, { previousSeq: revision });
        logger.info({ fencingToken }, 'lease released');
      } catch (error) {
        logger.warn({ err: error }, 'lease release failed; the entry expires at its expiresAt');
      }
    },
  };
}
