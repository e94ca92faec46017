/** The Node major every root script (start, test, demo, bench) requires. */
export const REQUIRED_NODE_MAJOR = 24;

/**
 * Exits with a clear message unless this process runs on Node 24. npm scripts put the pinned
 * `node` devDependency first on PATH, so `npm start` and `npm test` meet this after `npm ci`.
 */
export function requireNode24(): void {
  const major = Number.parseInt(process.versions.node.split('.')[0] ?? '', 10);
  if (major === REQUIRED_NODE_MAJOR) {
    return;
  }
  console.error(
    `keytower needs Node ${REQUIRED_NODE_MAJOR}, but this is Node ${process.versions.node} (${process.execPath}). ` +
      'Run `npm ci` and start it through npm (`npm start`, `npm test`), which uses the pinned Node from node_modules/.bin.',
  );
  process.exit(1);
}
