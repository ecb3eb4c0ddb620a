/**
 * The cluster flags (wire contract §9) as the configuration reads them: --cluster takes a
 * comma-separated list of NATS URLs (or an array in a config file), --cluster-replicas 1..5
 * (default 3), --node-id and --cluster-name are names NATS can carry, with their defaults;
 * anything else is a ConfigError naming the flag.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/common/config.ts';

test('--cluster: a comma-separated list of NATS URLs, from a flag or the environment', () => {
  const c = loadConfig({ cluster: 'nats://10.0.0.1:4222, nats://10.0.0.2:4222,tls://user:pw@h3:4223' }, {});
  assert.deepEqual(c.cluster, ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222', 'tls://user:pw@h3:4223']);
  assert.equal(c.clusterReplicas, 3);
  assert.equal(c.clusterName, 'sluice');
  assert.equal(c.nodeId, undefined);
  assert.deepEqual(loadConfig({}, { SLUICE_CLUSTER: '127.0.0.1:4222,[::1]:4223' }).cluster, ['127.0.0.1:4222', '[::1]:4223']);
  assert.equal(loadConfig({}, {}).cluster, undefined, 'absent: a single node');
});

test('bad cluster settings are refused, naming the flag', () => {
  const refused = (flags: Record<string, unknown>, flag: string) =>
    assert.throws(
      () => loadConfig(flags, {}),
      (err: unknown) => err instanceof ConfigError && err.message.includes(flag),
    );
  refused({ cluster: ',' }, '--cluster');
  refused({ cluster: 'http://h:80' }, '--cluster');
  refused({ cluster: 'nats://a b:4222' }, '--cluster');
  refused({ cluster: 'nats://h:4222', clusterReplicas: '0' }, '--cluster-replicas');
  refused({ cluster: 'nats://h:4222', clusterReplicas: '6' }, '--cluster-replicas');
  refused({ nodeId: 'has.dot' }, '--node-id');
  refused({ nodeId: 'x'.repeat(65) }, '--node-id');
  refused({ clusterName: 'a.b' }, '--cluster-name');
  refused({ clusterName: 'x'.repeat(33) }, '--cluster-name');
  const ok = loadConfig({ cluster: 'nats://h:4222', clusterReplicas: '5', nodeId: 'x'.repeat(64), clusterName: 'x'.repeat(32) }, {});
  assert.equal(ok.clusterReplicas, 5);
});
