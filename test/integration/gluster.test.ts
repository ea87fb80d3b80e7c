import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { GlusterPool, glusterChecked } from '../harness/index.js';

describe('real GlusterFS (glusterd)', () => {
  let pool: GlusterPool;

  beforeAll(async () => {
    pool = await GlusterPool.connect();
  });
  afterAll(async () => {
    await pool?.cleanup();
  });

  test('a volume is created, started, FUSE-mounted, written and read back, then removed', async () => {
    const volume = await pool.createVolume();
    const info = await glusterChecked(['volume', 'info', volume.name, '--xml']);
    expect(info).toContain(`<name>${volume.name}</name>`);
    expect(info).toContain('<statusStr>Started</statusStr>');

    const mnt = await pool.mount(volume);
    const mounts = await readFile('/proc/mounts', 'utf8');
    expect(mounts).toMatch(new RegExp(`:/${volume.name} ${mnt} fuse\\.glusterfs`));

    await writeFile(join(mnt, 'index.html'), 'hello from gluster\n');
    expect(await readFile(join(mnt, 'index.html'), 'utf8')).toBe('hello from gluster\n');
    // The file really went through Gluster: it sits on the brick, not in the mount directory.
    expect(await readFile(join(volume.brickDirs[0]!, 'index.html'), 'utf8')).toBe('hello from gluster\n');

    await pool.cleanup();
    expect(await pool.volumeNames()).not.toContain(volume.name);
    expect((await readFile('/proc/mounts', 'utf8')).includes(mnt)).toBe(false);
  });

  test('a replica-3 volume keeps a copy of each file on every brick', async () => {
    const volume = await pool.createVolume({ replica: 3 });
    const mnt = await pool.mount(volume);
    await writeFile(join(mnt, 'app.txt'), 'v1');
    for (const brick of volume.brickDirs) expect(await readFile(join(brick, 'app.txt'), 'utf8')).toBe('v1');
    const status = await execa('gluster', ['--mode=script', 'volume', 'status', volume.name, '--xml']);
    expect(status.stdout.match(/<status>1<\/status>/g)?.length).toBeGreaterThanOrEqual(3);
  });
});
