/**
 * The CLI the way a kcat user reaches for it: `--format` templates with kcat's tokens,
 * per-line keys with `--key-delimiter`, headers with `-H name=value`, short flags,
 * `--version`, a `serve --help` that describes every flag, and bad values refused with what
 * is allowed. Also `consume --follow` on a topic that does not exist yet waits for it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CONFIG_KEYS, flagName } from '../../src/common/config.ts';
import { type ServerProcess, bin, root, startServer } from '../client/server-process.ts';
import { sluice } from '../helpers/cli.ts';

describe('a CLI like kcat', () => {
  let server: ServerProcess;
  let url: string[];
  before(async () => {
    server = await startServer();
    url = ['-u', server.url];
  });
  after(async () => {
    await server?.stop();
  });

  test('--key-delimiter splits each line into key and value; -H adds headers; --format prints them with kcat tokens', async () => {
    const t0 = Date.now();
    const p = await sluice(['produce', ...url, '-t', 'kv', '-K', ':', '-k', 'fallback', '-H', 'source=cli', '-H', 'eq=a=b'], 'user1:{"n":1}\nuser2:two:colons\nno delimiter here\n:empty key\n');
    assert.equal(p.code, 0, p.stderr);
    const c = await sluice(['consume', ...url, '-t', 'kv', '--format', '%t %p %o [%k] %K %s %S %h|%T\\n']);
    assert.equal(c.code, 0, c.stderr);
    const lines = c.stdout.split('\n');
    assert.equal(lines.pop(), '', 'each line ends with the \\n of the template');
    const parsed = lines.map((l) => {
      const [head, ts] = l.split('|');
      assert.ok(Number(ts) >= t0 - 1000 && Number(ts) <= Date.now() + 1000, `timestamp ${ts}`);
      return head;
    });
    assert.deepEqual(parsed, [
      'kv 0 0 [user1] 5 {"n":1} 7 source=cli,eq=a=b',
      'kv 0 1 [user2] 5 two:colons 10 source=cli,eq=a=b',
      'kv 0 2 [fallback] 8 no delimiter here 17 source=cli,eq=a=b',
      'kv 0 3 [] 0 empty key 9 source=cli,eq=a=b',
    ]);
    // Consuming with a key delimiter prints key, delimiter, value (kcat -C -K).
    const k = await sluice(['consume', ...url, '-t', 'kv', '-K', '\\t', '-c', '2']);
    assert.equal(k.stdout, 'user1\t{"n":1}\nuser2\ttwo:colons\n');
    // The same template works on the replay port, and %% is a percent sign.
    const r = await sluice(['replay', '--replay-url', `tcp://127.0.0.1:${server.replayPort}`, '-t', 'kv', '-o', '2', '-f', '%o=%s 100%%\\n']);
    assert.equal(r.stdout, '2=no delimiter here 100%\n3=empty key 100%\n', r.stderr);
  });

  test('a null key and value print as nothing, with length -1', async () => {
    const res = await fetch(`${server.httpUrl}/v1/topics/nulls/records`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: [{}] }) });
    assert.equal(res.status, 200);
    const c = await sluice(['consume', ...url, '-t', 'nulls', '-f', '<%k|%K|%s|%S|%h>\\n']);
    assert.equal(c.stdout, '<|-1||-1|>\n');
  });

  test('bad values are refused with what is allowed (exit 2), before anything is sent', async () => {
    const cases: [string[], RegExp][] = [
      [['consume', ...url, '-t', 'kv', '--format', '%s %x'], /unknown token %x; the tokens are %s %S %k %K %t %p %o %T %h %%/],
      [['consume', ...url, '-t', 'kv', '--format', '%s', '--json'], /--json and --format exclude each other/],
      [['produce', ...url, '-t', 'kv', '--compression', 'gzip'], /argument 'gzip' is invalid\. Allowed choices are lz4, none/],
      [['produce', ...url, '-t', 'kv', '-H', 'no-equals'], /--header "no-equals": expected name=value/],
      [['produce', ...url, '-t', 'kv', '-K', ''], /--key-delimiter must not be empty/],
      [['consume', '-u', 'not a url', '-t', 'kv'], /--url "not a url" is not a URL/],
      [['consume', '-u', 'ftp://127.0.0.1:1', '-t', 'kv'], /the scheme must be ws, wss, http or https/],
      [['serve', '--flush', 'sometimes'], /--flush: Invalid option: expected one of "always"\|"interval"\|"never"/],
      [['serve', '--cors-origins', 'https://ok.example,ftp://x'], /--cors-origins: "ftp:\/\/x": the scheme must be http or https/],
      [['serve', '--port', '70000'], /--port: .*65535/],
    ];
    for (const [args, message] of cases) {
      const r = await sluice(args, 'x\n');
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '');
    }
  });

  test('--version prints the version; `version` adds the commit and the runtime', async () => {
    const { version } = JSON.parse(fs.readFileSync(`${root}/package.json`, 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const v = await sluice([flag]);
      assert.equal(v.code, 0);
      assert.equal(v.stdout, `${version}\n`);
    }
    const long = await sluice(['version']);
    assert.match(long.stdout, new RegExp(`^sluice ${version.replaceAll('.', '\\.')} \\(commit (?:[0-9a-f]{12}|unknown), Node v20\\.[\\d.]+, compiled build\\)\\n$`));
  });

  test('serve --help describes every flag, with its default and $SLUICE_ variable', async () => {
    const h = await sluice(['serve', '--help']);
    assert.equal(h.code, 0);
    const text = h.stdout.replace(/\n\s+/g, ' ');
    for (const key of CONFIG_KEYS) {
      const flag = `--${flagName(key)}`;
      const m = new RegExp(`${flag} <[a-z]+> +([^$]+)\\$SLUICE_[A-Z_]+`).exec(text);
      assert.ok(m, `${flag} is described in serve --help`);
      assert.ok(m[1].trim().length > 10, `${flag}: ${m[1]}`);
    }
    assert.match(text, /--compression <codec> .*one of none, lz4; default lz4/);
  });

  test('consume --follow waits for a topic that does not exist yet; without --follow it is UNKNOWN_TOPIC', async () => {
    const missing = await sluice(['consume', ...url, '-t', 'not-yet']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /UNKNOWN_TOPIC/);
    const child = spawn(process.execPath, [bin, 'consume', ...url, '-t', 'not-yet', '--follow', '-c', '2', '-f', '%o:%s\\n'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    for (let i = 0; i < 400 && !stderr.includes('waiting for it to be created'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(stderr, /topic not-yet does not exist yet: waiting for it to be created/);
    const p = await sluice(['produce', ...url, '-t', 'not-yet'], 'first\nsecond\n');
    assert.equal(p.code, 0, p.stderr);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    assert.equal(await exited, 0, stderr);
    clearTimeout(timer);
    assert.equal(stdout, '0:first\n1:second\n');
  });
});
