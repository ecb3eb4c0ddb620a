/** The replay suite over the read + write fallback (SLUICE_SENDFILE=off), set before anything loads. */
process.env.SLUICE_SENDFILE = 'off';
const { defineReplaySuite } = await import('./suite.ts');
defineReplaySuite('fallback');
