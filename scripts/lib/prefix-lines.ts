/** Copies a child's output to ours line by line, each line prefixed with the child's name. */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export function pipeWithPrefix(source: Readable, target: Writable, prefix: string): void {
  const lines = createInterface({ input: source, crlfDelay: Infinity });
  lines.on('line', (line) => target.write(`${prefix} ${line}\n`));
}
