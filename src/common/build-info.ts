/**
 * Where the sluice package lives and what build is running, the same from the compiled tree
 * (dist/src/common/build-info.js) and from the sources under tsx (src/common/build-info.ts):
 * the package root is found by walking up to sluice's own package.json rather than by a
 * fixed number of `..`, since the two sit at different depths.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BuildInfo {
  /** package.json's version. */
  version: string;
  /** The git commit the build was made from (12 hex digits), or `unknown`. */
  commit: string;
  /** Whether this process runs the compiled build (false: the TypeScript sources through tsx). */
  compiled: boolean;
}

/** A package.json above the module whose name is this: sluice's own, not the SDK package's. */
const packageName = 'sluice';
/** How far up the root may be (dist/src/common is three levels down). */
const rootSearchDepthMax = 6;

let rootCache: string | null = null;

/** The directory of sluice's package.json (the repository, or node_modules/sluice when installed). */
export function packageRoot(): string {
  if (rootCache) return rootCache;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < rootSearchDepthMax; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === packageName) return (rootCache = dir);
    } catch {
      // no package.json here
    }
    dir = path.dirname(dir);
  }
  throw new Error(`sluice's package.json was not found above ${fileURLToPath(import.meta.url)}`);
}

let infoCache: BuildInfo | null = null;

/** The running build: dist/build-info.json when built, else package.json's version. */
export function buildInfo(): BuildInfo {
  if (infoCache) return infoCache;
  const root = packageRoot();
  const compiled = import.meta.url.endsWith('.js');
  try {
    const b = JSON.parse(fs.readFileSync(path.join(root, 'dist/build-info.json'), 'utf8')) as { version: string; commit: string };
    infoCache = { version: b.version, commit: b.commit, compiled };
  } catch {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    infoCache = { version: pkg.version, commit: 'unknown', compiled };
  }
  return infoCache;
}
