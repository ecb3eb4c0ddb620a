/**
 * A package registry on 127.0.0.1 for the packaging tests, so that `npm install` of a packed
 * tarball into an empty directory runs as a user's would (npm resolves every dependency
 * range against a registry) with no network beyond loopback.
 *
 * It knows exactly the packages of sluice's package-lock.json: one packument per name, with
 * the versions, dependency ranges and platform fields the lock records, and serves each
 * tarball from npm's own content-addressed cache by the lock's integrity. `npm ci` put them
 * there; a platform package for another machine (never downloaded) is listed but refused
 * with 404, which npm never asks for since its os/cpu/libc do not match.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type net from 'node:net';
import path from 'node:path';

interface LockEntry {
  name?: string;
  version?: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, unknown>;
  bin?: Record<string, string>;
  engines?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  hasInstallScript?: boolean;
  license?: string;
}

export interface LocalRegistry {
  url: string;
  /** Names of the tarballs asked for that the cache did not have. */
  missing: string[];
  close(): Promise<void>;
}

/** npm's content-addressed cache (`npm config get cache`/_cacache) and npm's own cacache module to read it. */
function npmCache(): { dir: string; cacache: { get: { byDigest(cache: string, integrity: string): Promise<Buffer> } } } {
  const npmCli = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  const cacheDir = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
  const require = createRequire(path.join(npmCli, 'npm', 'package.json'));
  return { dir: path.join(cacheDir, '_cacache'), cacache: require('cacache') };
}

/** The name a lock entry installs under `node_modules/...`: its `name` (aliases) or the path's last segment(s). */
function nameOf(key: string, entry: LockEntry): string {
  if (entry.name) return entry.name;
  const tail = key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
  return tail;
}

export async function startLocalRegistry(lockFile: string): Promise<LocalRegistry> {
  const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as { packages: Record<string, LockEntry> };
  const { dir, cacache } = npmCache();
  /** name → version → entry */
  const packages = new Map<string, Map<string, LockEntry>>();
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || entry.link || !entry.version || !entry.integrity) continue;
    if (entry.resolved?.startsWith('file:')) continue; // vendored, bundled inside sluice's tarball
    const name = nameOf(key, entry);
    if (!packages.has(name)) packages.set(name, new Map());
    packages.get(name)!.set(entry.version, entry);
  }
  const missing: string[] = [];
  let base = '';
  const tarballName = (name: string, version: string): string => `${name.split('/').pop()}-${version}.tgz`;

  const server = http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]).slice(1);
    const tgz = /^(.+)\/-\/[^/]+-(\d[^/]*)\.tgz$/.exec(url);
    if (tgz) {
      const entry = packages.get(tgz[1])?.get(tgz[2]);
      if (!entry) return void res.writeHead(404).end();
      cacache.get.byDigest(dir, entry.integrity!).then(
        (bytes) => res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length }).end(bytes),
        () => {
          missing.push(`${tgz[1]}@${tgz[2]}`);
          res.writeHead(404).end();
        },
      );
      return;
    }
    const versions = packages.get(url);
    if (!versions) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    const doc = {
      name: url,
      'dist-tags': { latest: [...versions.keys()].at(-1) },
      versions: Object.fromEntries(
        [...versions].map(([version, e]) => [
          version,
          {
            name: url,
            version,
            dependencies: e.dependencies,
            optionalDependencies: e.optionalDependencies,
            peerDependencies: e.peerDependencies,
            peerDependenciesMeta: e.peerDependenciesMeta,
            bin: e.bin,
            engines: e.engines,
            os: e.os,
            cpu: e.cpu,
            libc: e.libc,
            hasInstallScript: e.hasInstallScript,
            license: e.license,
            dist: { tarball: `${base}/${url}/-/${tarballName(url, version)}`, integrity: e.integrity },
          },
        ]),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url: `${base}/`,
    missing,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Runs npm in `cwd` against the local registry only, with a cache of its own (so nothing it
 * does touches the user's), no audit and no update notice. Asynchronous on purpose: the
 * registry answers from this same process. Resolves with npm's output; rejects with it when
 * npm fails or runs past `timeoutMs` (a hang guard).
 */
export function npmAgainst(registry: LocalRegistry, cwd: string, args: string[], cacheDir: string, timeoutMs = 600_000): Promise<string> {
  const child = spawn('npm', [...args, '--registry', registry.url, '--cache', cacheDir, '--no-audit', '--no-fund', '--no-update-notifier'], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_registry: registry.url },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(out);
      reject(new Error(`npm ${args.join(' ')} failed in ${cwd} (${code ?? signal}):\n${out}\n(missing from the npm cache: ${registry.missing.join(', ') || 'none'})`));
    });
  });
}
