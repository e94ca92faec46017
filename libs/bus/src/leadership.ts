import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from '@keytower/telemetry';

import type { Bus } from './connection.ts';
import { isLeaseHeldError } from './errors.ts';
import { acquireLease, type Lease } from './lease.ts';

/** Work that runs only while this instance holds the lease. */
export interface LeaderWork {
  stop(): Promise<void>;
}

/** Settings of {@link runAsLeader}. */
export interface LeadershipOptions {
  bus: Bus;
  /** Lease name in `kms_leases`, for example `audit-writer`. */
  name: string;
  /** Id of this instance, unique among contenders. */
  holder: string;
  ttlSeconds: number;
  /** Delay between attempts to take the lease while another holder has it, in ms. */
  standbyPollMs: number;
  logger: Logger;
  /** Aborting stops the work, releases the lease and ends the loop. */
  signal: AbortSignal;
}

/**
 * Runs `lead` each time this instance acquires the lease and waits as a standby otherwise.
 *
 * When the lease is lost (a failed renewal, or a pause past its expiry) the work is stopped
 * at once and the instance goes back to standby. Resolves after `signal` aborts and the
 * work has stopped.
 */
export async function runAsLeader(
  options: LeadershipOptions,
  lead: (lease: Lease) => Promise<LeaderWork>,
): Promise<void> {
  const { logger, signal } = options;

  while (!signal.aborted) {
    let lease: Lease;
    try {
      lease = await acquireLease(options.bus, {
        name: options.name,
        holder: options.holder,
        ttlSeconds: options.ttlSeconds,
      });
    } catch (error) {
      if (!isLeaseHeldError(error)) {
        logger.warn({ err: error, lease: options.name }, 'lease acquisition failed; retrying');
      }
      await sleep(options.standbyPollMs, undefined, { signal }).catch(() => undefined);
      continue;
    }

    let work: LeaderWork | undefined;
    try {
      work = await lead(lease);
      await firstAbort([lease.lost, signal]);
    } catch (error) {
      logger.error(
        { err: error, lease: options.name, fencingToken: lease.fencingToken },
        'leader work failed; returning to standby',
      );
    } finally {
      await work?.stop();
      await lease.release();
    }
    if (!signal.aborted) {
      await sleep(options.standbyPollMs, undefined, { signal }).catch(() => undefined);
    }
  }
}

function firstAbort(signals: AbortSignal[]): Promise<void> {
  const combined = AbortSignal.any(signals);
  if (combined.aborted) {
    return Promise.resolve();
  }
  return new Promise((resolve) =>
    combined.addEventListener('abort', () => resolve(), { once: true }),
  );
}
