#!/usr/bin/env node
// The sluice command. The sources are TypeScript, run through tsx's loader so that the bin
// never runs a stale build.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
