/**
 * The live page at `GET /` (wire contract §5): static HTML plus the browser bundle of the
 * SDK (`/sluice-client.js`), which the page uses like any app would — a WebSocket for the
 * live tail, the HTTP API for topics, partitions, hw and rates.
 *
 * The bundle is `dist/sluice-client.js` (`npm run build:client`) when it is at least as new
 * as its sources, else built in memory with esbuild on first request (so the page never
 * runs a stale build); if neither can be had, the page says how to build it.
 * Framework-free: the gateway mounts `LivePage` on its router (gateway.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StaticAsset {
  contentType: string;
  body: Buffer;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
export const clientEntry = path.join(root, 'src/client/index.ts');
export const bundlePath = path.join(root, 'dist/sluice-client.js');

/** The SDK as one browser ESM bundle (esbuild); the same options as `npm run build:client`. */
export async function buildClientBundle(opts: { minify?: boolean; outfile?: string } = {}): Promise<Buffer> {
  const esbuild = await import('esbuild');
  const r = await esbuild.build({
    entryPoints: [clientEntry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: opts.minify ?? true,
    legalComments: 'none',
    write: false,
    outfile: opts.outfile ?? bundlePath,
    logLevel: 'silent',
  });
  const js = r.outputFiles.find((f) => f.path.endsWith('.js'));
  if (!js) throw new Error('esbuild produced no bundle');
  return Buffer.from(js.contents);
}

const missingBundle = `document.addEventListener('DOMContentLoaded', () => {
  document.body.insertAdjacentHTML('afterbegin', '<p style="color:#b00020">The SDK bundle is missing: run <code>npm run build:client</code> and restart sluice.</p>');
});
export function connect() { return Promise.reject(new Error('sluice-client.js was not built')); }
`;

/** The newest modification time of the bundle's sources (the SDK and the codec it imports). */
function sourcesMtimeMs(): number {
  let newest = 0;
  for (const dir of ['src/client', 'engine/codec']) {
    for (const f of fs.readdirSync(path.join(root, dir))) newest = Math.max(newest, fs.statSync(path.join(root, dir, f)).mtimeMs);
  }
  return Math.max(newest, fs.statSync(path.join(root, 'engine/errors.ts')).mtimeMs);
}

async function loadBundle(): Promise<Buffer> {
  // A dist/ build at least as new as its sources is served as is; otherwise build now.
  try {
    if (fs.statSync(bundlePath).mtimeMs >= sourcesMtimeMs()) return fs.readFileSync(bundlePath);
  } catch {
    // no dist/ build
  }
  try {
    return await buildClientBundle();
  } catch {
    try {
      return fs.readFileSync(bundlePath);
    } catch {
      return Buffer.from(missingBundle);
    }
  }
}

/**
 * The page's assets by URL path, loaded on first use (so that starting the server never
 * waits for a build). `asset()` never rejects for a known path: a missing bundle becomes a
 * script that says so on the page.
 */
export class LivePage {
  static readonly paths = ['/', '/index.html', '/sluice-client.js'] as const;
  private html: StaticAsset | null = null;
  private bundle: Promise<StaticAsset> | null = null;

  async asset(urlPath: string): Promise<StaticAsset | null> {
    if (urlPath === '/' || urlPath === '/index.html') {
      this.html ??= { contentType: 'text/html; charset=utf-8', body: fs.readFileSync(path.join(here, 'static/index.html')) };
      return this.html;
    }
    if (urlPath === '/sluice-client.js') {
      this.bundle ??= loadBundle().then((body) => ({ contentType: 'text/javascript; charset=utf-8', body }));
      return this.bundle;
    }
    return null;
  }
}
