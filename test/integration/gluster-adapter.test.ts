// The Gluster adapter against the machine's real glusterd (gluster 10.3). Every volume is made here with a
// unique name and bricks in temporary directories, and stopped, deleted and its bricks removed afterwards;
// other suites may have volumes of their own on the same glusterd at the same time, and none is touched.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { connectGluster, type GlusterPort, type GlusterVolumeSpec } from '../../src/adapters/gluster.js';
import { GlusterPool, glusterHost, TempDirs } from '../harness/index.js';
import { gkubeErrorOf } from '../helpers/errors.js';

describe('Gluster adapter on the real glusterd', () => {
  const temp = new TempDirs();
  const made: string[] = [];
  let gluster: GlusterPort;
  let host: string;
  let root: string;
  let counter = 0;

  /** A volume name no other suite uses; remembered so that afterAll removes whatever was made under it. */
  const volumeName = () => {
    const name = `gka-${process.pid}-${Date.now().toString(36)}-${counter++}`;
    made.push(name);
    return name;
  };
  const brickDir = async (label: string) => {
    const dir = join(root, `${counter}-${label}`);
    await mkdir(dir, { recursive: true });
    return dir;
  };
  // Same-host bricks on the root filesystem need `force`; that is this machine's layout.
  const spec = (dirs: string[], replica: 1 | 2 | 3 = 1): GlusterVolumeSpec => ({ bricks: dirs.map((d) => `${host}:${d}`), replica, arbiter: false, force: true });

  beforeAll(async () => {
    await GlusterPool.connect();
    host = glusterHost();
    root = await temp.make('gluster-adapter');
    gluster = connectGluster({});
  });

  afterAll(async () => {
    // Through the CLI directly, so that a fault in the adapter cannot leave a volume behind.
    for (const name of made) {
      await execa('gluster', ['--mode=script', 'volume', 'stop', name, 'force'], { reject: false, timeout: 60_000 });
      await execa('gluster', ['--mode=script', 'volume', 'delete', name], { reject: false, timeout: 60_000 });
    }
    await temp.removeAll();
  });

  test('peers lists this member as localhost, connected', async () => {
    const peers = await gluster.peers();
    expect(peers.find((p) => p.hostname === 'localhost')).toMatchObject({ connected: true, uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  });

  test('a replica-1 volume: create, start, mark, quota, status, stop, delete, each repeated without effect', async () => {
    const name = volumeName();
    const dir = await brickDir('r1');
    const { id } = await gluster.createVolume(name, spec([dir]));
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    expect(await gluster.volumeInfo(name)).toMatchObject({ name, id, status: 'Created', type: 'Distribute', replicaCount: 1, arbiterCount: 0, bricks: [{ host, path: dir, arbiter: false }] });
    expect(await gluster.volumeNames()).toContain(name);
    expect(await gluster.volumeStatus(name)).toEqual({ name, started: false, bricks: [{ host, path: dir, online: false, port: undefined, pid: undefined }], daemons: [] });

    expect(await gluster.startVolume(name)).toBe('changed');
    expect(await gluster.startVolume(name)).toBe('unchanged');
    const status = await gluster.volumeStatus(name);
    expect(status).toMatchObject({ name, started: true, bricks: [{ host, path: dir, online: true }] });
    expect(status!.bricks[0]!.port).toBeGreaterThan(0);
    expect(status!.bricks[0]!.pid).toBeGreaterThan(0);

    // gluster 10 takes user.* keys as they are; the value goes through the XML answer unchanged.
    const marker = `team/app <v1> & "ünï" it's`;
    await gluster.setOption(name, 'user.gkube.job', marker);
    expect((await gluster.volumeInfo(name))!.options['user.gkube.job']).toBe(marker);

    expect(await gluster.enableQuota(name)).toBe('changed');
    expect(await gluster.enableQuota(name)).toBe('unchanged');
    await gluster.limitUsage(name, '/', '1GB');
    expect(await gluster.quotaLimits(name)).toEqual([{ path: '/', hardLimitBytes: 1024 ** 3, usedBytes: 0, availableBytes: 1024 ** 3 }]);
    expect(await gluster.freeSpace(name)).toEqual({ freeBytes: 1024 ** 3, totalBytes: 1024 ** 3, quotaLimited: true, offlineBricks: 0 });
    // A decimal storage.size reaches gluster in bytes (glusterQuota): gluster takes a number without a unit as bytes.
    await gluster.limitUsage(name, '/', '500000000');
    expect(await gluster.quotaLimits(name)).toEqual([{ path: '/', hardLimitBytes: 500_000_000, usedBytes: 0, availableBytes: 500_000_000 }]);

    expect(await gluster.stopVolume(name)).toBe('changed');
    expect(await gluster.stopVolume(name)).toBe('unchanged');
    expect((await gluster.volumeInfo(name))!.status).toBe('Stopped');
    expect((await gluster.volumeStatus(name))!.started).toBe(false);

    expect(await gluster.deleteVolume(name)).toBe('changed');
    expect(await gluster.deleteVolume(name)).toBe('unchanged');
    expect(await gluster.stopVolume(name)).toBe('unchanged');
    expect(await gluster.volumeInfo(name)).toBeUndefined();
    expect(await gluster.volumeNames()).not.toContain(name);
  });

  test('a replica-2 volume with both bricks on this host', async () => {
    const name = volumeName();
    const dirs = [await brickDir('r2a'), await brickDir('r2b')];
    await gluster.createVolume(name, spec(dirs, 2));
    expect(await gluster.volumeInfo(name)).toMatchObject({ status: 'Created', type: 'Replicate', replicaCount: 2, bricks: dirs.map((path) => ({ host, path, arbiter: false })) });

    expect(await gluster.startVolume(name)).toBe('changed');
    const status = await gluster.volumeStatus(name);
    expect(status!.bricks.map((b) => [b.path, b.online])).toEqual(dirs.map((d) => [d, true]));
    expect(status!.daemons.map((d) => d.name)).toContain('Self-heal Daemon');
    const room = await gluster.freeSpace(name);
    expect(room.quotaLimited).toBe(false);
    expect(room.freeBytes).toBeGreaterThan(0);
    expect(room.totalBytes).toBeGreaterThanOrEqual(room.freeBytes);

    expect(await gluster.stopVolume(name)).toBe('changed');
    expect(await gluster.deleteVolume(name)).toBe('changed');
    expect(await gluster.volumeInfo(name)).toBeUndefined();
  });

  test('a missing volume: no info and no status; starting it fails naming it', async () => {
    const name = volumeName();
    expect(await gluster.volumeInfo(name)).toBeUndefined();
    expect(await gluster.volumeStatus(name)).toBeUndefined();
    const err = await gkubeErrorOf(gluster.startVolume(name));
    expect([err.code, err.exitCode]).toEqual(['OPERATION_FAILED', 1]);
    expect(err.message).toContain(`gluster volume start ${name} failed on this host`);
    expect(err.message).toContain(`Volume ${name} does not exist`);
  });

  test('a brick of a live volume, or inside one, is REFUSED naming the brick and the volume', async () => {
    const holder = volumeName();
    const dir = await brickDir('held');
    await gluster.createVolume(holder, spec([dir]));

    const same = volumeName();
    const err = await gkubeErrorOf(gluster.createVolume(same, spec([dir])));
    expect([err.code, err.exitCode]).toEqual(['REFUSED', 6]);
    expect(err.message).toContain(`brick ${host}:${dir} is already part of volume ${holder}`);
    expect(await gluster.volumeInfo(same)).toBeUndefined();

    const inner = volumeName();
    const nested = await gkubeErrorOf(gluster.createVolume(inner, spec([join(dir, 'sub')])));
    expect(nested.code).toBe('REFUSED');
    expect(nested.message).toContain(`brick ${host}:${dir}/sub is already part of volume ${holder}`);
    expect(await gluster.volumeInfo(inner)).toBeUndefined();

    expect(await gluster.deleteVolume(holder)).toBe('changed');
  });

  test('a brick that held a deleted volume is REFUSED even with force, and no volume is left behind', async () => {
    const first = volumeName();
    const dir = await brickDir('former');
    await gluster.createVolume(first, spec([dir]));
    await gluster.deleteVolume(first);

    const second = volumeName();
    const err = await gkubeErrorOf(gluster.createVolume(second, spec([dir])));
    expect(err.code).toBe('REFUSED');
    expect(err.message).toContain(`brick ${host}:${dir} still carries the id of a former volume`);
    expect(err.message).toContain(`(gluster: ${dir} is already part of a volume)`);
    expect(await gluster.volumeInfo(second)).toBeUndefined();
  });

  test.each([
    ['a host name that does not resolve', 'root@gkube-unreachable.invalid'],
    // Nothing listens on port 22 here; were an sshd there, BatchMode would fail its unknown host key the same way.
    ['a loopback address with no ssh server', 'root@127.0.0.1'],
  ])('glusterd through ssh to %s is DEPENDENCY_UNREACHABLE (exit 4), quickly', async (_, target) => {
    const started = Date.now();
    const err = await gkubeErrorOf(connectGluster({ ssh: target }).peers());
    expect([err.code, err.exitCode]).toEqual(['DEPENDENCY_UNREACHABLE', 4]);
    expect(err.message).toMatch(new RegExp(`^gluster pool list: glusterd on ${target.replaceAll('.', '\\.')} is unreachable \\(ssh to ${target.replaceAll('.', '\\.')} failed: ssh: `));
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('a read that outlives its deadline is DEPENDENCY_UNREACHABLE', async () => {
    const err = await gkubeErrorOf(connectGluster({ timeoutMs: 1 }).volumeNames());
    expect([err.code, err.message]).toEqual(['DEPENDENCY_UNREACHABLE', expect.stringMatching(/^gluster volume list: glusterd on this host \(.+\) is unreachable \(no answer within 1ms\)$/)]);
  });
});
