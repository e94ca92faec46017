/** Describes the machine a benchmark ran on, for the record in docs/BENCHMARKS.md. */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

/** Facts about the machine and run that make a benchmark figure comparable. */
export interface MachineDescription {
  cpuModel: string;
  /** Processing units available to this process (`nproc`). */
  cpuCount: number;
  /** Total memory as `free -m` reports it. */
  memoryMiB: number;
  nodeVersion: string;
  platform: string;
}

function commandOutput(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

/** Reads `lscpu`, `nproc` and `free -m`, falling back to Node's own view where a tool is missing. */
export function describeMachine(): MachineDescription {
  const lscpuModel = commandOutput('lscpu', [])
    ?.split('\n')
    .find((line) => line.startsWith('Model name:'))
    ?.slice('Model name:'.length)
    .trim();
  const nproc = Number.parseInt(commandOutput('nproc', [])?.trim() ?? '', 10);
  const freeTotal = commandOutput('free', ['-m'])
    ?.split('\n')
    .find((line) => line.startsWith('Mem:'))
    ?.split(/\s+/)[1];
  const freeMiB = Number.parseInt(freeTotal ?? '', 10);

  return {
    cpuModel: lscpuModel ?? cpus()[0]?.model ?? 'unknown',
    cpuCount: Number.isFinite(nproc) ? nproc : cpus().length,
    memoryMiB: Number.isFinite(freeMiB) ? freeMiB : Math.round(totalmem() / 2 ** 20),
    nodeVersion: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}
