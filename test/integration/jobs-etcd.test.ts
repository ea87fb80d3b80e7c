// The job registry and job locks against real etcd: CAS, concurrent writers, contending processes,
// a SIGKILLed holder, a holder that lost its lease, etcd down, and a leader killed during writes.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { execa, type ResultPromise } from 'execa';
import { connectEtcd, type EtcdPort } from '../../src/adapters/etcd.js';
import { GkubeError } from '../../src/errors.js';
import { JobLocks, type LockHolder } from '../../src/jobs/lock.js';
import { jobNames } from '../../src/jobs/naming.js';
import type { JobRecord } from '../../src/jobs/record.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import { freePort, startEtcd, waitUntil, type EtcdCluster } from '../harness/index.js';
import { gkubeErrorOf } from '../helpers/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const holderScript = `${root}dist/test/lock-holder.mjs`;
const gkube = `${root}bin/gkube`;

function record(job: string, revision = 0): JobRecord {
  const now = new Date().toISOString();
  return { version: 1, job, resourceName: 'r', kind: 'job', spec: { namespace: 'default', storage: { provider: 'none' } }, status: { phase: 'ready', revision, createdAt: now, updatedAt: now }, writeId: '' };
}

function holder(id: string): LockHolder {
  return { id, user: 'test', host: 'test-host', pid: process.pid, operation: 'test', startedAt: new Date().toISOString() };
}

/** Starts the lock-holder process; resolves with its output lines as they come. */
function holderProcess(endpoints: string[], prefix: string, job: string, holdMs: number, waitMs: number, id: string) {
  const proc = execa('node', [holderScript, endpoints.join(','), prefix, job, String(holdMs), String(waitMs), id], { reject: false });
  const lines: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n')));
  return { proc, lines, has: (prefixText: string) => lines.find((l) => l.startsWith(prefixText)) };
}

/** A holds the job's lock for `holdMs`; B waits up to `waitMs`; both succeed and B acquires only after A wrote. */
async function holdThenWait(endpoints: string[], prefix: string, job: string, holdMs: number, waitMs: number, idA: string, idB: string) {
  const a = holderProcess(endpoints, prefix, job, holdMs, 0, idA);
  await waitUntil('A to take the lock', async () => Boolean(a.has('acquired')));
  const b = holderProcess(endpoints, prefix, job, 0, waitMs, idB);
  const [ra, rb] = await Promise.all([a.proc, b.proc]);
  expect(ra.exitCode).toBe(0);
  expect(rb.exitCode).toBe(0);
  expect(Number(b.has('acquired')!.split(' ')[1])).toBeGreaterThanOrEqual(Number(a.has('wrote')!.split(' ')[1]));
  return { a, b };
}

beforeAll(async () => {
  await build({ entryPoints: [`${root}test/fixtures/lock-holder.ts`], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile: holderScript, logLevel: 'warning' });
});

describe('job registry and locks on one etcd', () => {
  let etcd: EtcdCluster;
  let port: EtcdPort;

  beforeAll(async () => {
    etcd = await startEtcd();
    port = connectEtcd({ endpoints: etcd.endpoints, callTimeoutMs: 5_000 });
  });
  afterAll(async () => {
    port?.close();
    await etcd?.stop();
  });

  test('a write from a stale read is a conflict and changes nothing', async () => {
    const registry = new JobRegistry(port, '/t1');
    const names = jobNames('team/app');
    const first = await registry.write(names, undefined, record('team/app'));
    await registry.write(names, first, record('team/app', 1));
    const error = await gkubeErrorOf(registry.write(names, first, record('team/app', 99)));
    expect(error.code).toBe('WRITE_CONFLICT');
    expect(error.exitCode).toBe(1);
    expect((await registry.get(names))!.record.status.revision).toBe(1);
    // Creating a record that exists is a conflict too.
    expect((await gkubeErrorOf(registry.write(names, undefined, record('team/app')))).code).toBe('WRITE_CONFLICT');
  });

  test('50 concurrent writers to one job key lose no update', async () => {
    const clients = Array.from({ length: 5 }, () => connectEtcd({ endpoints: etcd.endpoints, callTimeoutMs: 5_000 }));
    const names = jobNames('crowd');
    try {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          new JobRegistry(clients[i % 5]!, '/t2').modify(names, (current) => {
            const base = current?.record ?? record('crowd');
            return { ...base, status: { ...base.status, revision: base.status.revision + 1 } };
          }),
        ),
      );
    } finally {
      for (const c of clients) c.close();
    }
    expect((await new JobRegistry(port, '/t2').get(names))!.record.status.revision).toBe(50);
  });

  test('two processes contend: one proceeds, the other waits and then proceeds', async () => {
    const { b } = await holdThenWait(etcd.endpoints, '/t3', 'contended', 2_000, 20_000, 'build-a', 'build-b');
    expect(b.has('waiting for build-a')).toBeDefined();
    const stored = await new JobRegistry(port, '/t3').get(jobNames('contended'));
    expect(stored!.record.status).toMatchObject({ revision: 2, reason: 'last writer build-b' });
  });

  test('a holder working longer than the lease TTL keeps its lock (keep-alive), and the waiter gets it after', async () => {
    // B gets the lock only after A, which holds it past its 10 s TTL, wrote and let go.
    await holdThenWait(etcd.endpoints, '/t8', 'long', 14_000, 30_000, 'build-long-work', 'build-after');
  }, 40_000);

  test('gkube itself waits for a held job lock, then exits 3 naming the holder', async () => {
    await new JobRegistry(port, '/gkube/v1').write(jobNames('team/locked'), undefined, record('team/locked'));
    // A holds far longer than gkube waits, however slowly gkube starts on a busy machine; it is stopped after.
    const a = holderProcess(etcd.endpoints, '/gkube/v1', 'team/locked', 120_000, 0, 'jenkins-team-locked-5');
    await waitUntil('A to take the lock', async () => Boolean(a.has('acquired')));
    try {
      const r = await execa(gkube, ['delete', 'team/locked', '--wait-lock', '2s'], { env: { GKUBE_ETCD_ENDPOINTS: etcd.endpoints[0]! }, reject: false });
      expect(r.exitCode).toBe(3);
      expect(r.stderr).toMatch(/^waiting for the lock of job team\/locked, held by jenkins-team-locked-5 \(test, pid \d+ on test-host, since /m);
      expect(r.stderr).toMatch(/^error: job team\/locked is locked by jenkins-team-locked-5 .*; waited 2s; nothing was changed$/m);
      expect(r.stderr).toContain('gkube unlock team/locked --force jenkins-team-locked-5');
    } finally {
      a.proc.kill('SIGKILL');
      await a.proc;
    }
  });

  test('a second process gives up after its wait with exit 3, naming the holder', async () => {
    // A holds far longer than B waits, however slowly B starts on a loaded machine; A is killed afterwards.
    const a = holderProcess(etcd.endpoints, '/t4', 'busy', 120_000, 0, 'build-long');
    try {
      await waitUntil('A to take the lock', async () => Boolean(a.has('acquired')));
      const b = holderProcess(etcd.endpoints, '/t4', 'busy', 0, 1_000, 'build-impatient');
      const rb = await b.proc;
      expect(rb.exitCode).toBe(3);
      expect(b.has('error')).toMatch(/^error job busy is locked by build-long \(test, pid \d+ on test-host, since .*\); waited 1s; nothing was changed$/);
      // B gave up while A still held the lock: A has not written yet.
      expect(a.has('wrote')).toBeUndefined();
    } finally {
      a.proc.kill('SIGKILL');
      await a.proc;
    }
  });

  test('a holder SIGKILLed mid-work frees the lock within TTL + 5 s, and the next run proceeds', async () => {
    const a = holderProcess(etcd.endpoints, '/t5', 'crashy', 120_000, 0, 'build-dies');
    await waitUntil('A to take the lock', async () => Boolean(a.has('acquired')));
    a.proc.kill('SIGKILL');
    const killedAt = Date.now();
    await a.proc;
    const b = holderProcess(etcd.endpoints, '/t5', 'crashy', 0, 30_000, 'build-next');
    expect((await b.proc).exitCode).toBe(0);
    const acquiredAt = Number(b.has('acquired')!.split(' ')[1]);
    expect(acquiredAt - killedAt).toBeLessThan(10_000 + 5_000);
  }, 40_000);

  test('a holder that lost its lease cannot write', async () => {
    const names = jobNames('fenced');
    const registry = new JobRegistry(port, '/t6');
    const stored = await registry.write(names, undefined, record('fenced'));
    const lock = await new JobLocks(port, '/t6').acquire(names, holder('build-fenced'), { waitMs: 0 });
    const lockKey = await port.get(lock.fence.key);
    await port.revokeLease(lockKey!.lease); // what expiry does when the holder stalls past its TTL
    const error = await gkubeErrorOf(registry.write(names, stored, record('fenced', 1), { fence: lock.fence }));
    expect(error.code).toBe('LOCK_LOST');
    expect((await registry.get(names))!.record.status.revision).toBe(0);
    // Another run can take the lock at once, and the old holder's fence still fails against it.
    const next = await new JobLocks(port, '/t6').acquire(names, holder('build-new'), { waitMs: 0 });
    expect((await gkubeErrorOf(registry.write(names, stored, record('fenced', 1), { fence: lock.fence }))).code).toBe('LOCK_LOST');
    await registry.write(names, stored, record('fenced', 1), { fence: next.fence });
    await next.release();
    await lock.release();
  });
  describe('a lock holder on an etcd that stops answering', () => {
    test('counts its lock as lost before etcd could expire the lease, and says so', async () => {
      const names = jobNames('silent');
      // A 4 s lease: etcd may expire it 4 s after the last renewal it answered; the holder gives up 2 s before.
      const lock = await new JobLocks(port, '/t7', 4).acquire(names, holder('build-silent'), { waitMs: 0 });
      const lost = new Promise<{ at: number; err: Error }>((resolve) => lock.onLost((err) => resolve({ at: Date.now(), err })));
      const pid = etcd.members[0]!.process.pid!;
      process.kill(pid, 'SIGSTOP');
      const frozenAt = Date.now();
      try {
        const { at, err } = await lost;
        expect(lock.lost).toBe(true);
        expect(at - frozenAt).toBeLessThan(4_000);
        expect(err.message).toMatch(/answered no keep-alive of lease \S+ for 2s; it may have expired/);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await lock.release().catch(() => undefined);
    }, 20_000);

    test('a waiter stops at once on abort (SIGTERM); the holder keeps the lock', async () => {
      const names = jobNames('abort-wait');
      const first = await new JobLocks(port, '/t8').acquire(names, holder('build-first'), { waitMs: 0 });
      const stop = new AbortController();
      const waiting = gkubeErrorOf(new JobLocks(port, '/t8').acquire(names, holder('build-second'), { waitMs: 60_000, signal: stop.signal }));
      await new Promise((r) => setTimeout(r, 500));
      const abortedAt = Date.now();
      stop.abort('SIGTERM');
      const err = await waiting;
      expect(err.code).toBe('ABORTED');
      expect(err.message).toBe('stopped while waiting for the lock of job abort-wait; nothing was changed');
      expect(Date.now() - abortedAt).toBeLessThan(10_000); // not the 60 s it would wait
      // The lock is still the first holder's.
      expect(JSON.parse((await port.get(first.fence.key))!.value.toString()).id).toBe('build-first');
      await first.release();
    });

    test('a lock key without a lease, whose holder looks dead, is waited out, not reclaimed in a loop', async () => {
      const names = jobNames('leaseless');
      const key = '/t9/locks/leaseless';
      await port.txn([{ key, target: 'Create', op: '==', value: 0 }], [{ put: key, value: JSON.stringify({ ...holder('build-ghost'), pid: 999_999 }) }]);
      const err = await gkubeErrorOf(
        new JobLocks(port, '/t9').acquire(names, holder('build-next'), { waitMs: 300, reclaim: { thisHost: 'test-host', isRunning: () => false } }),
      );
      expect(err.code).toBe('JOB_LOCKED');
      expect(err.message).toMatch(/^job leaseless is locked by build-ghost /);
      await port.txn([{ key, target: 'Create', op: '!=', value: 0 }], [{ delete: key }]);
    });
  });
});

describe('etcd unreachable', () => {
  test('gkube list exits 4 within the deadline, naming the endpoint, when nothing listens', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const r = await execa(gkube, ['list', '--etcd-endpoints', endpoint], { reject: false });
    expect(r.exitCode).toBe(4);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.stderr.split('\n')[0]).toBe(`error: etcd at ${endpoint} is unreachable (no answer within 5s); nothing was changed`);
  });

  test('gkube exits 4 when the etcd it was using is stopped', async () => {
    const etcd = await startEtcd();
    const env = { GKUBE_ETCD_ENDPOINTS: etcd.endpoints[0]! };
    expect((await execa(gkube, ['list'], { env, reject: false })).exitCode).toBe(0);
    await etcd.stop();
    const started = Date.now();
    const r = await execa(gkube, ['list'], { env, reject: false });
    expect(r.exitCode).toBe(4);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('etcd with authentication', () => {
  test('credentials come from ETCDCTL_USER as etcdctl reads them; a wrong password is exit 2 and never printed', async () => {
    const etcd = await startEtcd();
    const ctl = (...args: string[]) => execa('etcdctl', ['--endpoints', etcd.endpoints[0]!, ...args], { env: { ETCDCTL_API: '3' } });
    try {
      await ctl('user', 'add', 'root:S3cret-pw');
      await ctl('auth', 'enable');
      const base = { GKUBE_ETCD_ENDPOINTS: etcd.endpoints[0]! };
      const ok = await execa(gkube, ['list'], { env: { ...base, ETCDCTL_USER: 'root:S3cret-pw' }, reject: false });
      expect(ok.stderr).toBe('');
      expect(ok.exitCode).toBe(0);
      const split = await execa(gkube, ['list'], { env: { ...base, ETCDCTL_USER: 'root', ETCDCTL_PASSWORD: 'S3cret-pw' }, reject: false });
      expect(split.exitCode).toBe(0);
      const wrong = await execa(gkube, ['list', '-v'], { env: { ...base, ETCDCTL_USER: 'root:Wrong-pw' }, reject: false });
      expect(wrong.exitCode).toBe(2);
      expect(wrong.stderr.split('\n')[0]).toMatch(/^error: etcd at http:\/\/127\.0\.0\.1:\d+ refused gkube's credentials/);
      expect(wrong.stderr).not.toContain('Wrong-pw');
      const anonymous = await execa(gkube, ['list'], { env: base, reject: false });
      expect(anonymous.exitCode).toBe(2);
    } finally {
      await etcd.stop();
    }
  });
});

describe('three members', () => {
  let etcd: EtcdCluster;

  beforeAll(async () => {
    etcd = await startEtcd({ members: 3 });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  test('killing the leader during record writes loses nothing and applies nothing twice', async () => {
    const port = connectEtcd({ endpoints: etcd.endpoints, callTimeoutMs: 5_000 });
    const registry = new JobRegistry(port, '/t7');
    const names = jobNames('ha');
    const increments = 30;
    let applied = 0;
    try {
      for (let i = 0; i < increments; i++) {
        if (i === 10) await etcd.kill(await etcd.leaderIndex());
        // A loaded machine can need several elections after the kill: retry for a while, not a fixed count.
        const giveUpAt = Date.now() + 45_000;
        for (;;) {
          try {
            await registry.modify(names, (current) => {
              const base = current?.record ?? record('ha');
              return { ...base, status: { ...base.status, revision: base.status.revision + 1 } };
            });
            applied++;
            break;
          } catch (err) {
            // Only "etcd did not answer" may be retried: the registry has already read back and knows the write did not land.
            if (!(err instanceof GkubeError && err.code === 'DEPENDENCY_UNREACHABLE') || Date.now() > giveUpAt) throw err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }
      expect(applied).toBe(increments);
      // The killed member is still down: every read goes on to a live member, none fails.
      for (let i = 0; i < 30; i++) expect((await registry.get(names))!.record.status.revision).toBe(increments);
    } finally {
      port.close();
    }
  }, 120_000);

  test('with one member down, a fresh client\'s reads all succeed (a member that refuses is skipped)', async () => {
    const down = etcd.members.findIndex((m) => m.process.pid === undefined);
    if (down < 0) await etcd.kill(0);
    const port = connectEtcd({ endpoints: etcd.endpoints, callTimeoutMs: 5_000 });
    try {
      const registry = new JobRegistry(port, '/t7');
      const reads = await Promise.all(Array.from({ length: 30 }, () => registry.get(jobNames('ha'))));
      expect(reads.every((r) => r?.record.status.revision === 30)).toBe(true);
    } finally {
      port.close();
    }
  }, 60_000);
});
