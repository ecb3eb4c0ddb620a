/**
 * src/common/listen.ts: a port is claimed exclusively, and every way of finding it taken ends
 * in the same clear error — a uWS socket bound with SO_REUSEPORT (what worker threads of a
 * front will use) is seen by the probe that guards them, and Node's net refuses too.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { ListenError, PortInUseError, claimPort, listenError, listenTcp, portSharing, uwsListenOptions } from '../../src/common/listen.ts';
import { loadUws } from '../../src/gateway/uws.ts';

const target = (port: number) => ({ front: 'test front', flag: '--test-port', host: '127.0.0.1', port });

test('one thread listens exclusively; only several threads of one front share their port', () => {
  assert.equal(portSharing(1), 'exclusive');
  assert.equal(uwsListenOptions(portSharing(1)), 1, 'LIBUS_LISTEN_EXCLUSIVE_PORT');
  assert.equal(portSharing(4), 'own-threads');
  assert.equal(uwsListenOptions(portSharing(4)), 0, 'SO_REUSEPORT for the threads');
});

test('claimPort refuses a port a SO_REUSEPORT uWS socket holds, and passes a free one', async () => {
  const uws = loadUws();
  const app = uws.App();
  const socket = await new Promise<unknown>((resolve) => app.listen('127.0.0.1', 0, (s) => resolve(s)));
  assert.ok(socket);
  const port = uws.us_socket_local_port(socket as never);
  try {
    await assert.rejects(claimPort(target(port)), (err: Error) => {
      assert.ok(err instanceof PortInUseError);
      assert.equal((err as PortInUseError).reason, 'PORT_IN_USE');
      assert.equal(err.message, `cannot listen on 127.0.0.1:${port} (the test front, --test-port): the port is already in use (another sluice or another program listens there); choose another with --test-port, or stop the other one`);
      return true;
    });
  } finally {
    uws.us_listen_socket_close(socket as never);
  }
  await claimPort(target(port));
});

test('listenTcp binds and reports the port; a taken port is PortInUseError', async () => {
  const a = net.createServer();
  const port = await listenTcp(a, target(0));
  assert.ok(port > 0);
  const b = net.createServer();
  try {
    await assert.rejects(listenTcp(b, target(port)), PortInUseError);
  } finally {
    a.close();
    b.close();
  }
});

test('other bind failures are named: no permission, an address not on this machine', () => {
  const eacces = listenError(target(80), Object.assign(new Error('listen EACCES'), { code: 'EACCES' }));
  assert.ok(eacces instanceof ListenError);
  assert.equal(eacces.reason, 'LISTEN_FAILED');
  assert.match(eacces.message, /permission denied/);
  assert.match(listenError({ ...target(1), host: '10.255.255.1' }, Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' })).message, /10\.255\.255\.1 is not an address of this machine \(--host\)/);
});
