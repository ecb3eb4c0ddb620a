// Builds sluice's own native addon (native/sendfile) during `npm ci` / `npm install`: the
// root package's "install" script runs this (and makes sure the bundled mmap-io loads). A failed build must not fail the install,
// since src/common/sendfile.ts falls back to read + write without the addon, but it is
// reported loudly here and again (once) when sluice starts.
//
// node-gyp: npm runs lifecycle scripts with npm_config_node_gyp set to the node-gyp it
// bundles; run by hand, we look for that same copy next to this Node. Headers: npm passes
// the configured nodedir (npm_config_nodedir); otherwise use the headers installed with
// this Node when they are there, so that node-gyp never tries to download any.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const addonDir = fileURLToPath(new URL('../native/sendfile/', import.meta.url));
const prefix = dirname(dirname(process.execPath));
const nodeGyp = [
  process.env.npm_config_node_gyp,
  join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
].find((candidate) => candidate && existsSync(candidate));

function fail(why) {
  console.warn(
    `\nsluice: WARNING: the native sendfile addon was not built (${why}).\n` +
      'sluice: replay will send files with the slower read + write fallback.\n' +
      'sluice: retry with `node scripts/build-native.mjs` once a C compiler, make and python3 are installed.\n',
  );
  process.exit(0);
}

// mmap-io ships inside sluice's tarball (bundleDependencies: its registry release does not
// build on Node 20, see vendor/), with a binary built where the tarball was packed, and npm
// runs no install script of a bundled package. So when that binary does not load here (another
// Node ABI, another CPU), build it again from its sources. sluice cannot run without it.
const require = createRequire(import.meta.url);
function ensureMmapIo() {
  let dir;
  try {
    dir = dirname(require.resolve('mmap-io/package.json'));
  } catch {
    return; // not installed yet (npm installs dependencies before this script, so: not needed)
  }
  try {
    require('mmap-io');
    return;
  } catch (err) {
    console.log(`sluice: mmap-io does not load here (${err.message.split('\n')[0]}): building it`);
  }
  if (!nodeGyp) {
    console.error('sluice: ERROR: mmap-io must be built and node-gyp was not found; run the install through npm');
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--loglevel=warn', ...nodedirArgs()], { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('sluice: ERROR: building mmap-io failed (output above); a C++17 compiler, make and python3 are needed');
    process.exit(1);
  }
}

function nodedirArgs() {
  return !process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/common.gypi')) ? [`--nodedir=${prefix}`] : [];
}

ensureMmapIo();
if (process.platform !== 'linux') fail(`sendfile(2) support is Linux only, this is ${process.platform}`);
if (!nodeGyp) fail('node-gyp not found: run this through npm, or install npm alongside node');

const args = [nodeGyp, 'rebuild', '--loglevel=warn', ...nodedirArgs()];
console.log(`sluice: building native/sendfile with ${nodeGyp}`);
const run = spawnSync(process.execPath, args, { cwd: addonDir, stdio: 'inherit' });
if (run.error) fail(`could not run node-gyp: ${run.error.message}`);
if (run.status !== 0) fail(`node-gyp exited with ${run.status ?? run.signal}; its output is above`);
console.log('sluice: native sendfile addon built');
