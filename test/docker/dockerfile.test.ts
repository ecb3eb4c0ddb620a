/**
 * No Docker engine runs where the tests run, so the Dockerfile is checked by parsing it:
 * what each stage copies must exist and reach `npm ci` before it runs (its install script
 * builds the sendfile addon, its prepare script compiles), and the runtime stage must be
 * what the README promises: the compiled build, no 0.0.0.0 without auth unless told, and a
 * health check that follows the configured port — `sluice health`, run here for real.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { after, before, describe } from 'node:test';
import { type ServerProcess, startServer, tempDir } from '../helpers/server.ts';

const require = createRequire(import.meta.url);
const { DockerfileParser } = require('dockerfile-ast') as typeof import('dockerfile-ast');
const root = path.resolve(import.meta.dirname, '../..');
const dockerfile = DockerfileParser.parse(fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

interface Step {
  keyword: string;
  args: string[];
  /** Flags such as --from=build, which getArguments leaves out. */
  flags: string[];
  stage: number;
}

const steps: Step[] = [];
let stage = -1;
for (const i of dockerfile.getInstructions()) {
  if (i.getKeyword() === 'FROM') stage++;
  const flags = 'getFlags' in i ? (i as unknown as { getFlags(): { toString(): string }[] }).getFlags().map((f) => f.toString()) : [];
  steps.push({ keyword: i.getKeyword(), args: i.getArguments().map((a) => a.getValue()), flags, stage });
}
const last = stage;

test('the Dockerfile parses and builds on the Node 20 image in two stages', () => {
  const froms = steps.filter((s) => s.keyword === 'FROM');
  assert.equal(froms.length, 2);
  for (const f of froms) assert.match(f.args[0], /^node:20-/);
});

test('every COPY from the build context names something in the repository', () => {
  for (const s of steps.filter((x) => x.keyword === 'COPY' && !x.flags.some((f) => f.startsWith('--from')))) {
    for (const src of s.args.filter((a) => !a.startsWith('--')).slice(0, -1)) {
      assert.ok(fs.existsSync(path.join(root, src)), `COPY ${src}: not in the repository`);
    }
  }
});

test('npm ci sees everything its install scripts and file: dependencies need', () => {
  const build = steps.filter((s) => s.stage === 0);
  const ci = build.findIndex((s) => s.keyword === 'RUN' && s.args.join(' ').includes('npm ci'));
  assert.ok(ci > 0, 'the build stage runs npm ci');
  const copied = build
    .slice(0, ci)
    .filter((s) => s.keyword === 'COPY')
    .flatMap((s) => s.args.slice(0, -1));
  const needs = new Set(['package.json', 'package-lock.json', 'vendor']);
  for (const m of `${pkg.scripts.install ?? ''} ${pkg.scripts.prepare ?? ''}`.matchAll(/\b(scripts|native)\/[\w./-]+/g)) needs.add(m[0].split('/')[0]);
  if (fs.existsSync(path.join(root, 'native'))) needs.add('native');
  // prepare compiles: the build config, the one it extends, and every directory it includes.
  assert.match(pkg.scripts.prepare ?? '', /scripts\/build\.mjs/);
  const buildConfig = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')) as { extends: string; include: string[] };
  needs.add('tsconfig.build.json');
  needs.add(path.basename(buildConfig.extends));
  for (const inc of buildConfig.include) needs.add(inc.split('/')[0]);
  for (const n of needs) assert.ok(copied.includes(n), `${n} must be copied before npm ci`);
});

test('the runtime stage runs the compiled build as a non-root user, with a data volume, both ports and a health check', () => {
  const run = steps.filter((s) => s.stage === last);
  const user = run.find((s) => s.keyword === 'USER');
  assert.ok(user && user.args[0] !== 'root' && user.args[0] !== '0', 'USER is not root');
  assert.ok(run.some((s) => s.keyword === 'VOLUME' && s.args.join(' ').includes('/data')));
  const exposed = run.filter((s) => s.keyword === 'EXPOSE').flatMap((s) => s.args);
  assert.deepEqual(exposed.sort(), ['8080', '8081', '9092']);
  const entry = run.find((s) => s.keyword === 'ENTRYPOINT');
  assert.ok(entry && entry.args.join(' ').includes('bin/sluice.js'));
  const copied = run.filter((s) => s.keyword === 'COPY').flatMap((s) => s.args.slice(0, -1));
  assert.ok(copied.includes('/app/dist') && copied.includes('/app/bin'), 'the compiled build is copied');
  assert.ok(!copied.some((c) => c === '/app/src' || c === '/app' || c === '/app/engine'), 'no TypeScript sources in the image');
});

test('the image does not serve 0.0.0.0 with auth off unless told so: no SLUICE_HOST baked in', () => {
  const env = steps.filter((s) => s.keyword === 'ENV').flatMap((s) => s.args).join(' ');
  assert.doesNotMatch(env, /SLUICE_HOST/);
  assert.doesNotMatch(env, /SLUICE_AUTH/);
});

test('the health check is `sluice health`, which follows the configured port, not a fixed 8080', () => {
  const health = steps.find((s) => s.stage === last && s.keyword === 'HEALTHCHECK');
  assert.ok(health);
  const cmd = health.args.join(' ');
  assert.match(cmd, /bin\/sluice\.js.*health/);
  assert.doesNotMatch(cmd, /8080/);
});

describe('sluice health', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });
  const health = (env: NodeJS.ProcessEnv, args: string[] = []) =>
    spawnSync(process.execPath, [path.join(root, 'bin/sluice.js'), 'health', ...args], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });

  test('exits 0 for the server on $SLUICE_PORT, and 1 naming the address when nothing answers there', () => {
    const ok = health({ SLUICE_PORT: String(server.port) });
    assert.equal(ok.status, 0, ok.stderr);
    // The replay port is a TCP port that speaks no HTTP: not a healthy gateway.
    const wrong = health({ SLUICE_PORT: String(server.replayPort) });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, new RegExp(`http://127\\.0\\.0\\.1:${server.replayPort}/healthz`));
  });

  test('reads the port from a --config file (SLUICE_CONFIG) like serve, and a bad value is bad usage', () => {
    const dir = tempDir();
    const file = path.join(dir, 'sluice.json');
    fs.writeFileSync(file, JSON.stringify({ port: server.port }));
    assert.equal(health({ SLUICE_CONFIG: file }).status, 0);
    const bad = health({ SLUICE_PORT: 'eighty' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /SLUICE_PORT/);
  });
});
