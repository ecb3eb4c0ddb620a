/**
 * How a module starts a worker thread on an entry file of its own so that it runs in both
 * ways sluice runs:
 *
 * - compiled (bin/sluice.js, `npm start`, Docker): every module is a `.js` file under dist/;
 *   the worker's entry is the `.js` beside its caller, and plain Node runs it.
 * - from the sources (`npm run dev`, tests that start a front in-process): modules are `.ts`
 *   files run by tsx. Node 20 does not apply `--import tsx` (inherited in execArgv) to a
 *   worker's entry module: `new Worker('x.ts')` fails with ERR_UNKNOWN_FILE_EXTENSION (seen
 *   here on 20.20). So the worker starts on a two-line bootstrap that registers tsx's loader
 *   in the worker's own thread first, then imports the `.ts` entry.
 *
 * Name the entry relative to the caller and without an extension:
 *
 *   const worker = startWorker(import.meta.url, './ws-worker', { workerData });
 *
 * The entry reads `workerData` and `parentPort` as usual. test/common/worker-entry.test.ts
 * starts a worker both ways.
 */
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The entry file beside `callerUrl`, with the caller's own extension (`.js` compiled, `.ts` from the sources). */
export function workerEntry(callerUrl: string, relativeName: string): URL {
  if (/\.[cm]?[jt]s$/.test(relativeName)) throw new Error(`workerEntry: name the entry without an extension (got ${relativeName})`);
  const ext = /\.([cm]?[jt]s)$/.exec(fileURLToPath(callerUrl))?.[1];
  if (ext === undefined) throw new Error(`workerEntry: cannot tell the extension of ${callerUrl}`);
  return new URL(`${relativeName}.${ext}`, callerUrl);
}

/** Starts a worker thread on the entry `relativeName` beside `callerUrl` (see above). */
export function startWorker(callerUrl: string, relativeName: string, options: WorkerOptions = {}): Worker {
  const entry = workerEntry(callerUrl, relativeName);
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  // Only a source run gets here, and tsx is then installed (a dev dependency).
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
