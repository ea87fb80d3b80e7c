import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { execa } from 'execa';
import { requireProgram, startEtcd, type EtcdCluster } from '../harness/index.js';

async function etcdctlGet(endpoint: string, key: string): Promise<string> {
  await requireProgram('etcdctl', 'etcd-client');
  const r = await execa('etcdctl', ['--endpoints', endpoint, 'get', key, '--print-value-only'], {
    env: { ETCDCTL_API: '3' },
    timeout: 10_000,
  });
  return r.stdout;
}

describe('real etcd, single member', () => {
  let etcd: EtcdCluster;
  let client: Etcd3;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.endpoints });
  });
  afterAll(async () => {
    client?.close();
    await etcd?.stop();
  });

  test('a value put through the etcd3 client reads back with etcdctl', async () => {
    const value = `deployed at ${Date.now()}`;
    await client.put('/gkube-test/jobs/demo').value(value);
    expect(await etcdctlGet(etcd.endpoints[0]!, '/gkube-test/jobs/demo')).toBe(value);
  });

  test('a value put with etcdctl reads back through the etcd3 client', async () => {
    await execa('etcdctl', ['--endpoints', etcd.endpoints[0]!, 'put', '/gkube-test/from-ctl', 'hello'], { env: { ETCDCTL_API: '3' } });
    expect(await client.get('/gkube-test/from-ctl').string()).toBe('hello');
  });
});

describe('real etcd, three members', () => {
  let etcd: EtcdCluster;
  let client: Etcd3;

  beforeAll(async () => {
    etcd = await startEtcd({ members: 3 });
    client = new Etcd3({ hosts: etcd.endpoints, dialTimeout: 2_000 });
  });
  afterAll(async () => {
    client?.close();
    await etcd?.stop();
  });

  test('killing the leader during writes loses no acknowledged write, and the member rejoins', async () => {
    const leader = await etcd.leaderIndex();
    const acknowledged: string[] = [];
    for (let i = 0; i < 40; i++) {
      if (i === 15) await etcd.kill(leader);
      const key = `/gkube-test/ha/${String(i).padStart(3, '0')}`;
      // A write in flight when the leader dies may fail; retrying a plain put of the same value is idempotent.
      for (let attempt = 0; ; attempt++) {
        try {
          await client.put(key).value(String(i));
          acknowledged.push(key);
          break;
        } catch (err) {
          if (attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    const newLeader = await etcd.leaderIndex();
    expect(newLeader).not.toBe(leader);

    await etcd.restart(leader);
    const survivor = etcd.endpoints[leader]!;
    for (const key of acknowledged) expect(await etcdctlGet(survivor, key)).toBe(String(Number(key.slice(-3))));
    const all = await client.getAll().prefix('/gkube-test/ha/').keys();
    expect(all).toHaveLength(40);
  });
});
