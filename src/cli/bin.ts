/**
 * The entry point of the `sluice` command. bin/sluice.js runs its compiled form
 * (dist/src/cli/bin.js); a development run from the sources is
 * `node --import tsx src/cli/bin.ts` (`npm run dev --`), with tsx as a Node flag rather than
 * its register API, so that worker threads inherit the loader (src/common/worker-entry.ts).
 */
import { main } from './main.ts';

await main(process.argv);
