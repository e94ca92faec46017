/** The shape every server module of the local stack follows. */
import type { Profile } from './profile.ts';
import type { Reporter } from './reporter.ts';

export interface ServerStatus {
  name: string;
  /** Pid from the pid file when the process runs; undefined for servers without a process (SoftHSM2). */
  pid: number | undefined;
  ports: number[];
  running: boolean;
  healthy: boolean;
  detail: string;
}

/** Describes a server's state in one phrase for `status`. */
export function healthDetail(
  pid: number | undefined,
  healthy: boolean,
  healthyText: string,
  unhealthyText: string,
): string {
  if (healthy) {
    return healthyText;
  }
  return pid === undefined ? 'stopped' : unhealthyText;
}

export interface StackServer {
  name: string;
  /** Fetches or builds the server's binaries when they are missing. */
  install(report: Reporter): Promise<void>;
  /** Starts the server unless it already runs healthy, waits until it is healthy, then applies its setup. */
  up(profile: Profile, report: Reporter): Promise<void>;
  status(profile: Profile): Promise<ServerStatus>;
  /** Stops the server by its pid file and waits for it to exit. */
  down(profile: Profile, report: Reporter): Promise<void>;
}
