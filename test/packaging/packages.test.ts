/**
 * What a user installs: the packed tarballs, each installed with npm into an empty
 * directory (dependencies from a registry on 127.0.0.1 that serves the lockfile's packages,
 * test/helpers/local-registry.ts), then used the way the README says.
 *
 * - The SDK package (dist/sluice-client, built by scripts/build.mjs): no dependency, imported
 *   from plain Node 20 both as ESM and with require() (talking to a real server), its
 *   declarations type-checked from an ESM and a CommonJS file, and bundled for a browser by
 *   esbuild with nothing of Node inside (run in Chromium when there is one).
 * - The server's own tarball: it installs (the vendored mmap-io travels inside it), and the
 *   installed `sluice` runs from its compiled build: serve, produce, consume.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { chromiumArgs, chromiumPath } from '../client/chromium.ts';
import { type LocalRegistry, npmAgainst, startLocalRegistry } from '../helpers/local-registry.ts';
import { type ServerProcess, startServer, tempDir } from '../helpers/server.ts';

const root = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** `npm pack <dir>` into `dest`; returns the tarball's path. */
async function pack(registry: LocalRegistry, dir: string, dest: string, cache: string): Promise<string> {
  // --ignore-scripts: the test runner built already; packing must not build again.
  const out = await npmAgainst(registry, root, ['pack', dir, '--pack-destination', dest, '--ignore-scripts', '--json'], cache);
  const [info] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  return path.join(dest, info.filename);
}

function emptyProject(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'newcomer', version: '1.0.0', private: true }));
}

function node(cwd: string, file: string, args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [file, ...args], { cwd, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
}

let registry: LocalRegistry;
let work: string;
let cache: string;

before(async () => {
  registry = await startLocalRegistry(path.join(root, 'package-lock.json'));
  work = tempDir('sluice-pack-');
  cache = path.join(work, 'npm-cache');
});
after(async () => {
  await registry?.close();
});

describe('the SDK package (sluice-client)', () => {
  let server: ServerProcess;
  let app: string;
  let tarball: string;

  before(async () => {
    server = await startServer();
    tarball = await pack(registry, './dist/sluice-client', work, cache);
    app = path.join(work, 'sdk-app');
    emptyProject(app);
    // Node 20 has no global WebSocket: `ws` beside the SDK, as its README says.
    await npmAgainst(registry, app, ['install', tarball, `ws@${pkg.dependencies.ws}`], cache);
  });
  after(async () => {
    await server?.stop();
  });

  test('the tarball holds ESM, CJS and declarations, and depends on nothing', () => {
    const installed = path.join(app, 'node_modules/sluice-client');
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(manifest.dependencies, undefined);
    assert.deepEqual(manifest.peerDependenciesMeta, { ws: { optional: true } });
    for (const f of ['esm/index.js', 'cjs/index.js', 'esm/replay.js', 'cjs/replay.js', 'esm/types/src/client/index.d.ts', 'cjs/types/src/client/index.d.ts']) {
      assert.ok(fs.existsSync(path.join(installed, f)), f);
    }
    const listing = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(!listing.some((f) => /\.node$|binding\.gyp$/.test(f)), 'nothing native');
    assert.ok(!listing.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'no TypeScript sources');
  });

  test('plain Node 20 imports it as ESM and talks to a server', () => {
    fs.writeFileSync(
      path.join(app, 'esm.mjs'),
      `import { connect, ERROR_CODES } from 'sluice-client';
const client = await connect(process.argv[2]);
const ack = await client.publish('from-esm', 'hello from an ES module');
const got = await new Promise((resolve) => {
  client.subscribe('from-esm', { from: 'earliest' }, (records) => resolve(records.map((r) => r.text())));
});
client.close();
console.log(JSON.stringify({ ack, got, codes: ERROR_CODES.length }));
`,
    );
    const r = node(app, 'esm.mjs', [server.url]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ack: { offset: number }; got: string[]; codes: number };
    assert.equal(out.ack.offset, 0);
    assert.deepEqual(out.got, ['hello from an ES module']);
    assert.equal(out.codes, 9);
  });

  test('plain Node 20 require()s it, and the replay entry reads a partition in bulk', () => {
    fs.writeFileSync(
      path.join(app, 'cjs.cjs'),
      `const { connect } = require('sluice-client');
const { replay } = require('sluice-client/replay');
(async () => {
  const client = await connect(process.argv[2]);
  for (const v of ['one', 'two', 'three']) await client.publish('from-cjs', v);
  client.close();
  const values = [];
  for await (const r of replay({ url: process.argv[3], topic: 'from-cjs', partition: 0, from: 'earliest' }).records()) values.push(new TextDecoder().decode(r.value));
  console.log(JSON.stringify(values));
})().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    const r = node(app, 'cjs.cjs', [server.url, `tcp://127.0.0.1:${server.replayPort}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ['one', 'two', 'three']);
  });

  test('its declarations type-check from an ES module and from a CommonJS file', () => {
    const use = `import { connect, type Message, type SluiceError } from 'sluice-client';
import { replay, type ReplayOptions } from 'sluice-client/replay';
export async function main(url: string): Promise<number> {
  const client = await connect(url, { token: 'jwt' });
  const sub = await client.subscribe('t', { from: { epoch: 'e', offset: 3 } }, (records: Message[]) => {
    const v: string = records[0].text();
    void v;
  });
  sub.on('error', (e: Error) => void (e as SluiceError).code);
  const opts: ReplayOptions = { url: 'tcp://127.0.0.1:8081', topic: 't', partition: 0, from: 'earliest' };
  void replay(opts);
  // @ts-expect-error: a publish takes a topic first
  await client.publish(42);
  return (await client.publish('t', 'v')).offset;
}
`;
    fs.writeFileSync(path.join(app, 'use-esm.mts'), use);
    fs.writeFileSync(path.join(app, 'use-cjs.cts'), use);
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, lib: ['es2022', 'dom'], types: [] }, files: ['use-esm.mts', 'use-cjs.cts'] }),
    );
    const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app, encoding: 'utf8' });
    assert.equal(tsc.status, 0, `${tsc.stdout}${tsc.stderr}`);
  });

  test('a browser bundle of it holds nothing of Node, and runs in Chromium', async () => {
    fs.writeFileSync(
      path.join(app, 'browser.js'),
      `import { connect } from 'sluice-client';
window.run = async (url) => {
  const client = await connect(url);
  const ack = await client.publish('from-browser', 'hello from a bundle');
  client.close();
  return ack.offset;
};
`,
    );
    const esbuild = await import('esbuild');
    const built = await esbuild.build({ entryPoints: [path.join(app, 'browser.js')], absWorkingDir: app, bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
    const js = built.outputFiles[0].text;
    assert.doesNotMatch(js, /["']node:|require\(["']ws["']\)|from ?["']ws["']/);
    assert.match(js, /window\.run/);
    if (!fs.existsSync(chromiumPath)) return; // scripts/setup.sh installs it as root; bundling was checked above
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.http}/healthz`);
      await page.addScriptTag({ content: js, type: 'module' });
      await page.waitForFunction(() => typeof (window as unknown as { run?: unknown }).run === 'function');
      const offset = await page.evaluate((url) => (window as unknown as { run(u: string): Promise<number> }).run(url), server.url);
      assert.equal(offset, 0);
    } finally {
      await browser.close();
    }
  });
});

describe("the server's own tarball", () => {
  let app: string;
  let child: ChildProcess | null = null;

  before(async () => {
    const tarball = await pack(registry, '.', work, cache);
    const listing = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(listing.includes('package/dist/src/cli/bin.js'), 'the compiled build is packed');
    assert.ok(listing.includes('package/node_modules/mmap-io/package.json'), 'mmap-io travels inside (bundled)');
    assert.ok(!listing.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/')), 'no sources or tests');
    app = path.join(work, 'server-app');
    emptyProject(app);
    await npmAgainst(registry, app, ['install', tarball], cache);
  });
  after(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  test('installs into an empty directory with no dev dependency (no tsx, no TypeScript)', () => {
    for (const dev of ['tsx', 'typescript', 'esbuild']) assert.ok(!fs.existsSync(path.join(app, 'node_modules', dev)), `${dev} is not installed`);
    assert.ok(!('tsx' in pkg.dependencies), 'tsx is a dev dependency only');
  });

  test('the installed sluice serves, and its produce and consume work against it', async () => {
    const bin = path.join(app, 'node_modules/.bin/sluice');
    const version = spawnSync(bin, ['--version'], { cwd: app, encoding: 'utf8' });
    assert.equal(version.stdout.trim(), pkg.version, version.stderr);
    child = spawn(bin, ['serve', '--port', '0', '--replay-port', '0', '--data-dir', path.join(app, 'data'), '--log-level', 'warn'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const listening = await new Promise<{ port: number }>((resolve, reject) => {
      readline.createInterface({ input: child!.stdout! }).once('line', (l) => resolve(JSON.parse(l) as { port: number }));
      child!.once('exit', (code) => reject(new Error(`the installed server exited (${code}): ${stderr}`)));
    });
    const url = `ws://127.0.0.1:${listening.port}`;
    const produced = spawnSync(bin, ['produce', '--url', url, '--topic', 'installed'], { cwd: app, input: 'a\nb\n', encoding: 'utf8' });
    assert.equal(produced.status, 0, produced.stderr);
    const consumed = spawnSync(bin, ['consume', '--url', url, '--topic', 'installed'], { cwd: app, encoding: 'utf8' });
    assert.equal(consumed.stdout, 'a\nb\n', consumed.stderr);
    // The page was built into the tarball: nothing is bundled on a request.
    const page = await fetch(`http://127.0.0.1:${listening.port}/sluice-client.js`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /export\{/);
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child!.once('exit', resolve));
    assert.equal(code, 0, stderr);
  });
});
