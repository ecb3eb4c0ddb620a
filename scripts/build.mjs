#!/usr/bin/env node
// Builds what sluice runs and ships from the TypeScript sources. npm runs it as `prepare`
// (so `npm ci` in a clone builds, and `npm pack` packs a fresh build); `npm run build` and
// the test runner (scripts/test.mjs) run it too. It needs the dev dependencies (typescript,
// esbuild); the built tree needs neither.
//
//   dist/engine/, dist/src/   the server, the CLI and the SDK compiled to .js + .d.ts by
//                             TypeScript 7 (tsconfig.build.json). The sources import each
//                             other as `./x.ts`; `rewriteRelativeImportExtensions` makes those
//                             `./x.js` in the emitted JavaScript (dynamic imports too). The
//                             .d.ts files keep `./x.ts`, which TypeScript resolves to `./x.d.ts`
//                             (checked from a consumer with skipLibCheck off); the SDK package
//                             below rewrites them to `.js` anyway, the usual form.
//   dist/page/                the live page: index.html and the SDK's browser bundle, so the
//                             server never runs a bundler on a request
//   dist/sluice-client/       the SDK as its own package: ESM + CJS + .d.ts (see below)
//   dist/build-info.json      version and commit, for `--version` and sluice_build_info
//
// A clean build every time (the old output is removed first): ~1-2 s, and a source file that
// was deleted can never live on in dist/.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const dist = path.join(root, 'dist');

/** esbuild options of the browser bundle the live page loads (and the size test checks). */
export const browserBundleOptions = {
  entryPoints: [path.join(root, 'src/client/index.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'silent',
};

function need(pkg) {
  try {
    return require.resolve(`${pkg}/package.json`);
  } catch {
    console.error(`sluice build: ${pkg} is missing. The build needs the dev dependencies: run \`npm ci\` (without --omit=dev).`);
    process.exit(1);
  }
}

function compile() {
  const tsc = path.join(path.dirname(need('typescript')), 'bin/tsc');
  fs.rmSync(path.join(dist, 'engine'), { recursive: true, force: true });
  fs.rmSync(path.join(dist, 'src'), { recursive: true, force: true });
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('sluice build: tsc failed (its errors are above)');
    process.exit(1);
  }
}

async function page(esbuild) {
  const out = path.join(dist, 'page');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  fs.copyFileSync(path.join(root, 'src/gateway/static/index.html'), path.join(out, 'index.html'));
  await esbuild.build({ ...browserBundleOptions, outfile: path.join(out, 'sluice-client.js') });
}

/** The .d.ts files the SDK's entry points reach, copied with `.ts` specifiers rewritten to `.js`. */
function copyTypes(entries, into) {
  const seen = new Set();
  const queue = [...entries];
  while (queue.length > 0) {
    const rel = queue.shift();
    if (seen.has(rel)) continue;
    seen.add(rel);
    const text = fs.readFileSync(path.join(dist, rel), 'utf8');
    const rewritten = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, (_m, pre, spec, post) => {
      queue.push(path.join(path.dirname(rel), `${spec}.d.ts`));
      return `${pre}${spec}.js${post}`;
    });
    fs.mkdirSync(path.join(into, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(into, rel), rewritten);
  }
}

/**
 * The SDK as a package of its own (dist/sluice-client, `npm pack dist/sluice-client`): one
 * bundled file per entry point and format, no dependency at all (Node 20 has no global
 * WebSocket, so there the SDK loads `ws` at run time: an optional peer dependency), and the
 * declarations twice, under a `"type": "module"` and a `"type": "commonjs"` directory, so
 * that TypeScript reads each with the module kind of the file it describes.
 */
async function clientPackage(esbuild, version) {
  const out = path.join(dist, 'sluice-client');
  fs.rmSync(out, { recursive: true, force: true });
  const entries = { index: 'src/client/index.ts', replay: 'src/client/replay.ts' };
  for (const [format, dir, ext] of [['esm', 'esm', '.js'], ['cjs', 'cjs', '.js']]) {
    for (const [name, src] of Object.entries(entries)) {
      await esbuild.build({
        entryPoints: [path.join(root, src)],
        bundle: true,
        format,
        // The main entry runs in browsers and Node alike; replay speaks raw TCP (Node only).
        platform: name === 'replay' ? 'node' : 'neutral',
        mainFields: ['module', 'main'],
        target: name === 'replay' ? 'node20' : 'es2022',
        legalComments: 'none',
        logLevel: 'silent',
        outfile: path.join(out, dir, `${name}${ext}`),
      });
    }
    copyTypes(Object.values(entries).map((s) => s.replace(/\.ts$/, '.d.ts')), path.join(out, dir, 'types'));
    fs.writeFileSync(path.join(out, dir, 'package.json'), `${JSON.stringify({ type: format === 'esm' ? 'module' : 'commonjs' })}\n`);
  }
  const types = (dir, entry) => `./${dir}/types/src/client/${entry}.d.ts`;
  const cond = (entry) => ({
    import: { types: types('esm', entry), default: `./esm/${entry}.js` },
    require: { types: types('cjs', entry), default: `./cjs/${entry}.js` },
  });
  const pkg = {
    name: 'sluice-client',
    version,
    description: 'The sluice SDK for browsers and Node: subscribe with resume, publish, batching LZ4 producer, bulk replay',
    license: 'MIT',
    type: 'module',
    engines: { node: '>=20' },
    sideEffects: false,
    main: './cjs/index.js',
    module: './esm/index.js',
    types: types('esm', 'index'),
    exports: { '.': cond('index'), './replay': cond('replay'), './package.json': './package.json' },
    files: ['esm/', 'cjs/', 'README.md'],
    peerDependencies: { ws: '^8.0.0' },
    peerDependenciesMeta: { ws: { optional: true } },
  };
  fs.writeFileSync(path.join(out, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  fs.writeFileSync(
    path.join(out, 'README.md'),
    `# sluice-client ${version}\n\nThe SDK of the sluice pub/sub gateway, for browsers and Node 20+: ESM and CommonJS, with\ntypes, and no dependency. On Node 20 (no global WebSocket) install \`ws\` beside it:\n\n    npm install sluice-client ws\n\n\`\`\`js\nimport { connect } from 'sluice-client';            // or: const { connect } = require('sluice-client')\nconst client = await connect('ws://127.0.0.1:8080');\nawait client.subscribe('orders', { from: 'earliest' }, (records) => console.log(records.map((r) => r.text())));\nawait client.publish('orders', 'hello');\n\`\`\`\n\n\`sluice-client/replay\` (Node only) reads a partition in bulk from the replay port. The whole\nAPI is in docs/client.md of the sluice repository.\n`,
  );
}

function buildInfo(version) {
  let commit = process.env.SLUICE_COMMIT || 'unknown';
  if (commit === 'unknown') {
    try {
      commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      // not a git checkout (a tarball, a Docker context without .git)
    }
  }
  fs.writeFileSync(path.join(dist, 'build-info.json'), `${JSON.stringify({ version, commit })}\n`);
}

export async function build() {
  const t0 = performance.now();
  need('esbuild');
  const esbuild = await import('esbuild');
  const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  fs.mkdirSync(dist, { recursive: true });
  compile();
  await page(esbuild);
  await clientPackage(esbuild, version);
  buildInfo(version);
  return performance.now() - t0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const ms = await build();
  if (!process.argv.includes('--quiet')) console.log(`sluice build: dist/ in ${(ms / 1000).toFixed(1)} s`);
}
