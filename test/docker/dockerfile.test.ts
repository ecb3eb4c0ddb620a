/**
 * No Docker engine runs where the tests run, so the Dockerfile is checked by parsing it:
 * what each stage copies must exist and reach `npm ci` before it runs (its install script
 * builds the sendfile addon), and the runtime stage must be what the README promises.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createRequire } from 'node:module';

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
  for (const m of (pkg.scripts.install ?? '').matchAll(/\b(scripts|native)\/[\w./-]+/g)) needs.add(m[0].split('/')[0]);
  if (fs.existsSync(path.join(root, 'native'))) needs.add('native');
  for (const n of needs) assert.ok(copied.includes(n), `${n} must be copied before npm ci`);
});

test('the runtime stage runs as a non-root user with a data volume, both ports and a health check', () => {
  const run = steps.filter((s) => s.stage === last);
  const user = run.find((s) => s.keyword === 'USER');
  assert.ok(user && user.args[0] !== 'root' && user.args[0] !== '0', 'USER is not root');
  assert.ok(run.some((s) => s.keyword === 'VOLUME' && s.args.join(' ').includes('/data')));
  const exposed = run.filter((s) => s.keyword === 'EXPOSE').flatMap((s) => s.args);
  assert.deepEqual(exposed.sort(), ['8080', '8081', '9092']);
  const health = run.find((s) => s.keyword === 'HEALTHCHECK');
  assert.ok(health && health.args.join(' ').includes('/healthz'));
  const entry = run.find((s) => s.keyword === 'ENTRYPOINT');
  assert.ok(entry && entry.args.join(' ').includes('bin/sluice.js'));
});
