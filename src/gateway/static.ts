/**
 * The live page at `GET /` (wire contract §5): its HTML and the browser bundle of the SDK
 * (`/sluice-client.js`), which the page uses like any app would: a WebSocket for the live
 * tail and the produce box, the HTTP API for topics and stats.
 *
 * Both files come from the build (scripts/build.mjs writes dist/page/), whether the server
 * runs compiled or from the sources: no bundler ever runs on a request. Without a build the
 * page says how to make one. Read once, on first request, so starting never waits for them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../common/build-info.ts';

export interface StaticAsset {
  contentType: string;
  body: Buffer;
}

/** dist/page/ of the package: index.html and sluice-client.js. */
export function pageDir(): string {
  return path.join(packageRoot(), 'dist/page');
}

const notBuilt = (file: string): string => `sluice: ${file} is not built: run \`npm run build\` (npm ci runs it) and restart sluice`;

const FILES = {
  '/': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/sluice-client.js': { file: 'sluice-client.js', contentType: 'text/javascript; charset=utf-8' },
} as const;

/** The page's assets by URL path; a missing build becomes a page (or script) that says so. */
export class LivePage {
  static readonly paths = Object.keys(FILES) as (keyof typeof FILES)[];
  private readonly cache = new Map<string, StaticAsset>();

  asset(urlPath: string): StaticAsset | null {
    const entry = FILES[urlPath as keyof typeof FILES];
    if (!entry) return null;
    let asset = this.cache.get(entry.file);
    if (!asset) {
      let body: Buffer;
      try {
        body = fs.readFileSync(path.join(pageDir(), entry.file));
      } catch {
        const msg = notBuilt(`dist/page/${entry.file}`);
        // The page imports the SDK as a namespace and shows what `connect()` rejects with.
        body = Buffer.from(
          entry.file.endsWith('.js')
            ? `export function connect() { return Promise.reject(new Error(${JSON.stringify(msg)})); }\n`
            : `<!doctype html><meta charset="utf-8"><title>sluice</title><p>${msg}</p>\n`,
        );
        return { contentType: entry.contentType, body };
      }
      asset = { contentType: entry.contentType, body };
      this.cache.set(entry.file, asset);
    }
    return asset;
  }
}
