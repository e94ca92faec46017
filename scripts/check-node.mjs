// Stops an npm script with a clear message when it does not run on Node 24. This file is plain
// JavaScript so that an older Node can run it: the TypeScript entry points need Node 24 to load.
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24) {
  console.error(
    `keytower needs Node 24, but this is Node ${process.versions.node}. ` +
      'Run it through npm (npm start, npm test), which uses the node devDependency, after npm ci.',
  );
  process.exit(1);
}
