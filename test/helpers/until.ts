/** Waiting in tests for something another process or thread makes true. */
import assert from 'node:assert/strict';

/**
 * Polls `cond` (every 5 ms at first, backing off to 50 ms) until it holds; `ms` is a hang
 * guard, not an assertion about speed: past it the test fails "timed out waiting for <what>".
 */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; !(await cond()); i++) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, Math.min(5 * (i + 1), 50)));
  }
}
