/**
 * Writes the files generated from the contracts (`npm run contracts:generate`), or with
 * `--check` reports the ones that are stale and exits 1.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../src/generated-files.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const check = process.argv.includes('--check');
const files = generatedFiles();

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

const stale: string[] = [];
for (const file of files) {
  const path = join(root, file.path);
  if ((await readOrNull(path)) === file.content) continue;
  stale.push(file.path);
  if (!check) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, file.content);
  }
}

const schemaFolder = join(root, 'contracts/generated/json-schema');
const expected = new Set(files.map((file) => join(root, file.path)));
for (const name of await readdir(schemaFolder).catch(() => [] as string[])) {
  const path = join(schemaFolder, name);
  if (expected.has(path)) continue;
  stale.push(`contracts/generated/json-schema/${name}`);
  if (!check) await rm(path);
}

if (check && stale.length > 0) {
  console.error(`generated files are stale: ${stale.join(', ')}\nrun: npm run contracts:generate`);
  process.exit(1);
}
console.log(
  check
    ? 'generated files are up to date'
    : `${stale.length} generated files written, ${files.length - stale.length} unchanged`,
);
