#!/usr/bin/env node
// The sluice command: runs the compiled build (dist/, made by `npm run build`, which `npm ci`
// runs as the `prepare` step). The TypeScript sources run with `npm run dev -- ...` instead.
try {
  await import('../dist/src/cli/bin.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('/dist/src/cli/bin.js')) {
    process.stderr.write('sluice: not built yet (dist/ is missing): run `npm run build` (npm ci runs it too)\n');
    process.exit(1);
  }
  throw err;
}
