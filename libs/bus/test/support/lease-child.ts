/**
 * A lease holder run as a child process, so tests can pause it with SIGSTOP. Settings come
 * as JSON in argv[2]; every 50 ms it writes `{ held, lost, at }` to stdout.
 */
import { acquireLease, connectBus } from '../../src/index.ts';
import { memoryLogger } from './helpers.ts';

interface LeaseChildSettings {
  url: string;
  user: string;
  password: string;
  bucket: string;
  name: string;
  holder: string;
  ttlSeconds: number;
}

const settings = JSON.parse(process.argv[2] ?? '{}') as LeaseChildSettings;
const { logger } = memoryLogger('lease-child');
const bus = await connectBus({
  servers: settings.url,
  user: settings.user,
  password: settings.password,
  name: 'lease-child',
  logger,
});
const lease = await acquireLease(bus, settings);
process.stdout.write(
  `${JSON.stringify({ event: 'acquired', fencingToken: lease.fencingToken, at: Date.now() })}\n`,
);
setInterval(() => {
  process.stdout.write(
    `${JSON.stringify({ event: 'state', held: lease.held, lost: lease.lost.aborted, at: Date.now() })}\n`,
  );
}, 50);
