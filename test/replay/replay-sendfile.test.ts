/** The replay suite over the sendfile(2) addon (the default transfer path). */
delete process.env.SLUICE_SENDFILE;
const { defineReplaySuite } = await import('./suite.ts');
defineReplaySuite('sendfile');
