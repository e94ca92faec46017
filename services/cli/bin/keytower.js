#!/usr/bin/env node
// Launches services/cli/src/main.ts with the repository's pinned Node 24, which runs
// TypeScript directly; the node on PATH may be older and cannot.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');
const pinnedNode = join(repoRoot, 'node_modules', '.bin', 'node');
const main = join(here, '..', 'src', 'main.ts');

const node = existsSync(pinnedNode) ? pinnedNode : process.execPath;
const result = spawnSync(node, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
if (result.error) {
  process.stderr.write(`keytower: could not start ${node}: ${result.error.message}\n`);
  process.exit(5);
}
process.exit(result.status ?? 1);
