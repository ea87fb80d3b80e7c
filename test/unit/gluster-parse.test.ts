// The Gluster adapter against gluster 10.3's real answers (test/fixtures/gluster/, captured on a real pool
// with `gluster --mode=script … --xml`): the XML reader, each parser, and how the port turns each answer
// into a result or a GkubeError, through a runner that replays those answers.
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  connectGluster,
  createGlusterPort,
  parseCliOutput,
  parsePeers,
  parseQuotaLimits,
  parseVolumeInfos,
  parseVolumeNames,
  parseVolumeStatus,
  parseXml,
  shellQuote,
  sshArgv,
  type GlusterRun,
  type GlusterRunner,
} from '../../src/adapters/gluster.js';
import { GkubeError } from '../../src/errors.js';
import { gkubeErrorFrom, gkubeErrorOf } from '../helpers/errors.js';

const fixtures = join(process.cwd(), 'test/fixtures/gluster');
const fixture = (name: string) => readFileSync(join(fixtures, `${name}.xml`), 'utf8');
const answerOf = (name: string) => parseCliOutput(fixture(name));

// Answers that are not XML, as gluster 10.3 printed them (the CLI ignores --xml for these).
const connectionFailedStdout = fixture('pool-list-connection-failed');
const usageErrorStderr =
  'Please provide a valid hostname/ip other than localhost, 127.0.0.1 or loopback address (0.0.0.0 to 0.255.255.255).\n\n' +
  'Usage:\nvolume create <NEW-VOLNAME> [[replica <COUNT> [arbiter <COUNT>]]|[replica 2 thin-arbiter 1]] [disperse [<COUNT>]] ' +
  '[disperse-data <COUNT>] [redundancy <COUNT>] [transport <tcp|rdma|tcp,rdma>] <NEW-BRICK> <TA-BRICK>... [force]\n';

describe('parseXml', () => {
  test('elements, attributes, mixed text, entities, CDATA, comments and processing instructions', () => {
    const root = parseXml(
      '\ufeff<?xml version="1.0"?>\n<!-- c --><a x="1" y=\'&lt;2&gt;\'>t1<b/>t2<c>&amp;&quot;&apos;&#65;&#x42;é</c><![CDATA[<raw>&]]></a>\n',
    );
    expect(root).toEqual({
      name: 'a',
      attributes: { x: '1', y: '<2>' },
      children: [
        { name: 'b', attributes: {}, children: [], text: '' },
        { name: 'c', attributes: {}, children: [], text: '&"\'ABé' },
      ],
      text: 't1t2<raw>&',
    });
  });

  test.each([
    ['<a><b></a>', '</a> closes <b>'],
    ['<a>', '<a> is not closed'],
    ['<a/><b/>', 'a second root element'],
    ['x<a/>', 'text outside the root element'],
    ['', 'no root element'],
    ['<a>&nbsp;</a>', 'the unknown entity &nbsp;'],
    ['<a>fish & chips</a>', 'a bare &'],
    ['<!DOCTYPE a [<!ENTITY e "boom">]><a>&e;</a>', 'DOCTYPE'],
    ['<a x=1/>', 'attribute x is not quoted'],
    ['<a x="1" x="2"/>', 'attribute x appears twice'],
    ['<a><!-- open </a>', 'a comment is not closed'],
  ])('%j is refused: %s', (xml, why) => {
    const err = gkubeErrorFrom(() => parseXml(xml));
    expect(err.code).toBe('OPERATION_FAILED');
    expect(err.message).toContain(why);
  });
});

describe('parsers on real gluster 10.3 answers', () => {
  test('pool list: the answering member lists itself as localhost', () => {
    expect(parsePeers(answerOf('pool-list'))).toEqual([{ hostname: 'localhost', uuid: '86d84c4f-bcf1-47a6-b488-a82222192f7a', connected: true }]);
  });

  test('volume list, with volumes and with none', () => {
    expect(parseVolumeNames(answerOf('volume-list'))).toEqual(['gkcap-r1', 'gkcap-r2']);
    expect(parseVolumeNames(answerOf('volume-list-empty'))).toEqual([]);
  });

  test('volume info of a missing volume: opRet -1, EG_NOVOL (30806), and no volumes', () => {
    const answer = answerOf('volume-info-missing');
    expect({ opRet: answer.opRet, opErrno: answer.opErrno, opErrstr: answer.opErrstr }).toEqual({ opRet: -1, opErrno: 30806, opErrstr: 'Volume does not exist' });
    expect(parseVolumeInfos(answer)).toEqual([]);
  });

  test('volume info of a created replica-2 volume', () => {
    const [info] = parseVolumeInfos(answerOf('volume-info-created'));
    expect(info).toEqual({
      name: 'gkcap-r2',
      id: '72bcb8c1-65be-4ff9-b778-c8e1cd8b9f96',
      status: 'Created',
      type: 'Replicate',
      replicaCount: 2,
      arbiterCount: 0,
      bricks: [
        { host: 'vm', path: '/tmp/gcap/bricks/b1', arbiter: false },
        { host: 'vm', path: '/tmp/gcap/bricks/b2', arbiter: false },
      ],
      options: {
        'cluster.granular-entry-heal': 'on',
        'storage.fips-mode-rchecksum': 'on',
        'transport.address-family': 'inet',
        'nfs.disable': 'on',
        'performance.client-io-threads': 'off',
      },
    });
  });

  test.each([
    ['volume-info-started', 'Started', 'Distribute'],
    ['volume-info-stopped', 'Stopped', 'Replicate'],
  ])('%s: status %s, type %s', (name, status, type) => {
    const [info] = parseVolumeInfos(answerOf(name));
    expect(info).toMatchObject({ status, type });
  });

  test('volume info keeps user.* options verbatim and shows quota on', () => {
    const [info] = parseVolumeInfos(answerOf('volume-info-options'));
    expect(info!.options).toMatchObject({ 'user.gkube.job': 'team-app-d9fa377d7638', 'user.gkube.note': "a b;c'd", 'features.quota': 'on' });
  });

  test('option values come back as set: gluster escapes < > & and passes quotes and UTF-8 as they are', () => {
    expect(fixture('volume-info-escaped')).toContain('<value>a&lt;b&gt;&amp;c"é\'z</value>');
    const [info] = parseVolumeInfos(answerOf('volume-info-escaped'));
    expect(info!.options['user.gkube.job']).toBe(`a<b>&c"é'z`);
  });

  test('an arbiter volume marks its third brick', () => {
    const [info] = parseVolumeInfos(answerOf('volume-info-arbiter'));
    expect(info).toMatchObject({ replicaCount: 3, arbiterCount: 1 });
    expect(info!.bricks.map((b) => b.arbiter)).toEqual([false, false, true]);
  });

  test('volume info all lists every volume', () => {
    expect(parseVolumeInfos(answerOf('volume-info-all')).map((v) => [v.name, v.bricks.map((b) => b.path)])).toEqual([
      ['gkcap-r1', ['/tmp/gcap/bricks/a']],
      ['gkcap-r2', ['/tmp/gcap/bricks/b1', '/tmp/gcap/bricks/b2']],
    ]);
  });

  test('volume status: bricks with port and pid, the self-heal daemon apart', () => {
    expect(parseVolumeStatus(answerOf('volume-status'), 'gkcap-r2')).toEqual({
      name: 'gkcap-r2',
      started: true,
      bricks: [
        { host: 'vm', path: '/tmp/gcap/bricks/b1', online: true, port: 49399, pid: 30664 },
        { host: 'vm', path: '/tmp/gcap/bricks/b2', online: true, port: 52651, pid: 30680 },
      ],
      daemons: [{ name: 'Self-heal Daemon', host: 'localhost', online: true, pid: 30697 }],
    });
  });

  test('volume status detail carries the bricks’ filesystem sizes', () => {
    const status = parseVolumeStatus(answerOf('volume-status-detail'), 'gkcap-r1');
    expect(status.bricks).toEqual([{ host: 'vm', path: '/tmp/gcap/bricks/a', online: true, port: 50797, pid: 30615, freeBytes: 245332287488, totalBytes: 270553174016 }]);
  });

  test('quota list', () => {
    expect(parseQuotaLimits(answerOf('volume-quota-list'))).toEqual([{ path: '/', hardLimitBytes: 1073741824, usedBytes: 0, availableBytes: 1073741824 }]);
  });

  test('failures carry opRet -1 and gluster’s words; a brick reused under force is only a warning', () => {
    const envelope = (name: string) => {
      const a = answerOf(name);
      return [a.opRet, a.opErrno, a.opErrstr];
    };
    expect(envelope('volume-start-another-transaction')).toEqual([-1, 30802, 'Another transaction is in progress. Please try again after some time.']);
    expect(envelope('volume-quota-another-transaction')).toEqual([-1, 30802, 'Another transaction is in progress for gkcap-tx. Please try again after some time.']);
    expect(envelope('volume-create-brick-in-use')).toEqual([-1, 30800, 'Brick: vm:/tmp/gcap/bricks/a not available. Brick may be containing or be contained by an existing brick.']);
    expect(envelope('volume-create-brick-was-used-no-force')).toEqual([-1, 30800, '/tmp/gcap/lmnt/x1 is already part of a volume']);
    expect(envelope('volume-create-brick-was-used')).toEqual([0, 0, '/tmp/gcap/bricks/b1 is already part of a volume']);
    expect(envelope('volume-create-exists')).toEqual([-1, 0, 'Volume gkcap-r1 already exists']);
    expect(envelope('volume-set-bad-key')).toEqual([-1, 30800, 'option : nosuch.option does not exist\nDid you mean auth.allow?']);
  });
});

/** A runner that replays recorded answers in order and fails the test on any call it was not told about. */
function replay(...script: Array<[args: string, answer: string | Partial<GlusterRun>]>) {
  const calls: string[][] = [];
  const runner: GlusterRunner = async (args) => {
    calls.push(args);
    const next = script.shift();
    if (!next) throw new Error(`unexpected gluster call: ${args.join(' ')}`);
    const [expected, answer] = next;
    expect(args.join(' ')).toBe(`--mode=script ${expected} --xml`);
    const run: GlusterRun = { exitCode: 0, stdout: '', stderr: '', timedOut: false };
    return typeof answer === 'string' ? { ...run, stdout: fixture(answer) } : { ...run, ...answer };
  };
  const port = createGlusterPort(runner, { where: 'gfs-1', retry: { attempts: 3, baseDelayMs: 1 } });
  return { port, calls, left: () => script.length };
}

describe('the port on recorded answers', () => {
  test('volumeInfo is undefined for the EG_NOVOL answer only', async () => {
    const missing = replay(['volume info gone', 'volume-info-missing']);
    expect(await missing.port.volumeInfo('gone')).toBeUndefined();
    // Same words, other errno (a status answer): not proof of absence, so it is a failure.
    const other = replay(['volume info gone', 'volume-status-missing']);
    const err = await gkubeErrorOf(other.port.volumeInfo('gone'));
    expect([err.code, err.message]).toEqual(['OPERATION_FAILED', 'gluster volume info gone failed on gfs-1: Volume nosuchvol-gkcap does not exist']);
  });

  test('a busy pool is retried, then succeeds', async () => {
    const r = replay(['volume start v', 'volume-start-another-transaction'], ['volume start v', 'volume-quota-another-transaction'], ['volume start v', 'volume-start']);
    expect(await r.port.startVolume('v')).toBe('changed');
    expect(r.left()).toBe(0);
  });

  test('a pool that stays busy fails after the configured attempts, naming the reason', async () => {
    const r = replay(...Array.from({ length: 3 }, () => ['volume stop v', 'volume-start-another-transaction'] as [string, string]));
    const err = await gkubeErrorOf(r.port.stopVolume('v'));
    expect(err.code).toBe('OPERATION_FAILED');
    expect(err.exitCode).toBe(1);
    expect(err.message).toMatch(/^gluster volume stop v failed on gfs-1: glusterd stayed busy through 3 attempts over [0-9.]+s \(Another transaction is in progress\. Please try again after some time\.\)$/);
  });

  test('locking and peer failures of a multi-member pool are retried too (answers constructed from gluster’s messages)', async () => {
    const busy = (text: string) => ({ stdout: `<cliOutput><opRet>-1</opRet><opErrno>30800</opErrno><opErrstr>${text}</opErrstr></cliOutput>` });
    const r = replay(['volume delete v', busy('Locking failed on gfs-2. Please check log file for details.')], ['volume delete v', busy('Some of the peers are down')], ['volume delete v', 'volume-delete']);
    expect(await r.port.deleteVolume('v')).toBe('changed');
  });

  test('start, stop and delete are idempotent, decided by the volume’s state', async () => {
    expect(await replay(['volume start gkcap-r1', 'volume-start-already'], ['volume info gkcap-r1', 'volume-info-started']).port.startVolume('gkcap-r1')).toBe('unchanged');
    expect(await replay(['volume stop gkcap-r2', 'volume-stop-already'], ['volume info gkcap-r2', 'volume-info-stopped']).port.stopVolume('gkcap-r2')).toBe('unchanged');
    expect(await replay(['volume stop gkcap-r2', 'volume-stop-not-started'], ['volume info gkcap-r2', 'volume-info-created']).port.stopVolume('gkcap-r2')).toBe('unchanged');
    expect(await replay(['volume stop gone', 'volume-stop-missing'], ['volume info gone', 'volume-info-missing']).port.stopVolume('gone')).toBe('unchanged');
    expect(await replay(['volume delete gone', 'volume-delete-missing'], ['volume info gone', 'volume-info-missing']).port.deleteVolume('gone')).toBe('unchanged');
    expect(await replay(['volume quota gkcap-r1 enable', 'volume-quota-enable-already'], ['volume info gkcap-r1', 'volume-info-options']).port.enableQuota('gkcap-r1')).toBe('unchanged');
  });

  test('starting a missing volume and deleting a started one fail with gluster’s words', async () => {
    const start = await gkubeErrorOf(replay(['volume start gkcap-r2', 'volume-start-missing'], ['volume info gkcap-r2', 'volume-info-missing']).port.startVolume('gkcap-r2'));
    expect([start.code, start.message]).toEqual(['OPERATION_FAILED', 'gluster volume start gkcap-r2 failed on gfs-1: Volume gkcap-r2 does not exist']);
    const del = await gkubeErrorOf(replay(['volume delete gkcap-r1', 'volume-delete-started'], ['volume info gkcap-r1', 'volume-info-started']).port.deleteVolume('gkcap-r1'));
    expect(del.message).toBe('gluster volume delete gkcap-r1 failed on gfs-1: Volume gkcap-r1 has been started.Volume needs to be stopped before deletion.');
  });

  test('volumeStatus of a volume that is not started lists its bricks offline; of a missing one, undefined', async () => {
    const created = replay(['volume status gkcap-r2', 'volume-status-not-started'], ['volume info gkcap-r2', 'volume-info-created']);
    expect(await created.port.volumeStatus('gkcap-r2')).toEqual({
      name: 'gkcap-r2',
      started: false,
      bricks: [
        { host: 'vm', path: '/tmp/gcap/bricks/b1', online: false, port: undefined, pid: undefined },
        { host: 'vm', path: '/tmp/gcap/bricks/b2', online: false, port: undefined, pid: undefined },
      ],
      daemons: [],
    });
    expect(await replay(['volume status gone', 'volume-status-missing'], ['volume info gone', 'volume-info-missing']).port.volumeStatus('gone')).toBeUndefined();
  });

  test('a brick of a live volume is REFUSED, naming the brick and the volume that holds it', async () => {
    const spec = { bricks: ['vm:/tmp/gcap/bricks/a'], replica: 1 as const, arbiter: false, force: true };
    const r = replay(['volume create gkcap-dup vm:/tmp/gcap/bricks/a force', 'volume-create-brick-in-use'], ['volume info all', 'volume-info-all']);
    const err = await gkubeErrorOf(r.port.createVolume('gkcap-dup', spec));
    expect([err.code, err.exitCode]).toEqual(['REFUSED', 6]);
    expect(err.message).toBe(
      'gluster volume gkcap-dup was not created on gfs-1: brick vm:/tmp/gcap/bricks/a is already part of volume gkcap-r1; gkube never reuses a brick ' +
        '(gluster: Brick: vm:/tmp/gcap/bricks/a not available. Brick may be containing or be contained by an existing brick.)',
    );
  });

  test('a brick inside another volume’s brick is REFUSED, naming that volume', async () => {
    const spec = { bricks: ['vm:/tmp/gcap/bricks/b1/sub'], replica: 1 as const, arbiter: false, force: true };
    const r = replay(['volume create gkcap-dup vm:/tmp/gcap/bricks/b1/sub force', 'volume-create-brick-in-use-subdir'], ['volume info all', 'volume-info-all']);
    const err = await gkubeErrorOf(r.port.createVolume('gkcap-dup', spec));
    expect(err.code).toBe('REFUSED');
    expect(err.message).toContain('brick vm:/tmp/gcap/bricks/b1/sub is already part of volume gkcap-r2');
  });

  test('a brick that held a former volume is REFUSED; with force gluster creates anyway, so the volume is removed again', async () => {
    const spec = { bricks: ['vm:/tmp/gcap/bricks/b1'], replica: 1 as const, arbiter: false, force: true };
    const r = replay(
      ['volume create gkcap-r3 vm:/tmp/gcap/bricks/b1 force', 'volume-create-brick-was-used'],
      ['volume delete gkcap-r3', 'volume-delete'],
      // The pool's other volume (an answer to `volume info all` with one volume has this same shape).
      ['volume info all', 'volume-info-arbiter'],
    );
    const err = await gkubeErrorOf(r.port.createVolume('gkcap-r3', spec));
    expect(err.code).toBe('REFUSED');
    expect(err.message).toBe(
      'gluster volume gkcap-r3 was not created on gfs-1: brick vm:/tmp/gcap/bricks/b1 still carries the id of a former volume (its data may still be there); ' +
        'gkube never reuses a brick (gluster: /tmp/gcap/bricks/b1 is already part of a volume)',
    );
    expect(r.left()).toBe(0);
  });

  test('the same refusal without force (a brick on its own filesystem)', async () => {
    const spec = { bricks: ['vm:/tmp/gcap/lmnt/x1'], replica: 1 as const, arbiter: false, force: false };
    const r = replay(['volume create gkcap-l2 vm:/tmp/gcap/lmnt/x1', 'volume-create-brick-was-used-no-force'], ['volume info all', 'volume-info-all']);
    const err = await gkubeErrorOf(r.port.createVolume('gkcap-l2', spec));
    expect(err.code).toBe('REFUSED');
    expect(err.message).toContain('brick vm:/tmp/gcap/lmnt/x1 still carries the id of a former volume');
  });

  test('create lays out replica and arbiter, and returns the new id', async () => {
    const r = replay(['volume create gkcap-arb replica 3 arbiter 1 vm:/tmp/gcap/bricks/ar1 vm:/tmp/gcap/bricks/ar2 vm:/tmp/gcap/bricks/ar3 force', 'volume-create-arbiter']);
    const created = await r.port.createVolume('gkcap-arb', { bricks: ['ar1', 'ar2', 'ar3'].map((b) => `vm:/tmp/gcap/bricks/${b}`), replica: 3, arbiter: true, force: true });
    expect(created).toEqual({ id: 'e237320c-5142-4c15-b0e1-311086770fb6' });
  });

  test('other create failures are OPERATION_FAILED with gluster’s words', async () => {
    const spec = { bricks: ['192.0.2.99:/tmp/gcap/bricks/lh'], replica: 1 as const, arbiter: false, force: true };
    const err = await gkubeErrorOf(replay(['volume create gkcap-uh 192.0.2.99:/tmp/gcap/bricks/lh force', 'volume-create-unknown-host']).port.createVolume('gkcap-uh', spec));
    expect([err.code, err.message]).toEqual(['OPERATION_FAILED', "gluster volume create gkcap-uh failed on gfs-1: Host 192.0.2.99 is not in 'Peer in Cluster' state"]);
  });

  test('setOption and limitUsage pass their arguments and report gluster’s refusal on one line', async () => {
    await replay(['volume set v user.gkube.job a b;c\'d', 'volume-set-user']).port.setOption('v', 'user.gkube.job', "a b;c'd");
    const err = await gkubeErrorOf(replay(['volume set v nosuch.option on', 'volume-set-bad-key']).port.setOption('v', 'nosuch.option', 'on'));
    expect(err.message).toBe('gluster volume set v nosuch.option failed on gfs-1: option : nosuch.option does not exist; Did you mean auth.allow?');
    await replay(['volume quota v limit-usage / 1GB', 'volume-quota-limit']).port.limitUsage('v', '/', '1GB');
    const off = await gkubeErrorOf(replay(['volume quota v limit-usage / 1GB', 'volume-quota-limit-not-enabled']).port.limitUsage('v', '/', '1GB'));
    expect(off.message).toBe('gluster volume quota v limit-usage / 1GB failed on gfs-1: Quota is disabled, please enable quota');
  });

  test('freeSpace is the bricks’ room capped by the quota on /', async () => {
    const r = replay(['volume info gkcap-r1', 'volume-info-options'], ['volume status gkcap-r1 detail', 'volume-status-detail'], ['volume quota gkcap-r1 list', 'volume-quota-list']);
    expect(await r.port.freeSpace('gkcap-r1')).toEqual({ freeBytes: 1073741824, totalBytes: 1073741824, quotaLimited: true, offlineBricks: 0 });
  });

  test('glusterd not answering is DEPENDENCY_UNREACHABLE (exit 4), naming the host', async () => {
    const err = await gkubeErrorOf(replay(['pool list', { exitCode: 1, stdout: connectionFailedStdout }]).port.peers());
    expect([err.code, err.exitCode, err.message]).toEqual([
      'DEPENDENCY_UNREACHABLE',
      4,
      'gluster pool list: glusterd on gfs-1 is unreachable (Connection failed. Please check if gluster daemon is operational.)',
    ]);
  });

  test('a deadline that passes: unreachable for a read, outcome unknown for a change', async () => {
    const readErr = await gkubeErrorOf(replay(['volume list', { exitCode: undefined, timedOut: true }]).port.volumeNames());
    expect([readErr.code, readErr.exitCode]).toEqual(['DEPENDENCY_UNREACHABLE', 4]);
    const writeErr = await gkubeErrorOf(replay(['volume start v', { exitCode: undefined, timedOut: true }]).port.startVolume('v'));
    expect([writeErr.code, writeErr.exitCode]).toEqual(['OUTCOME_UNKNOWN', 4]);
    expect(writeErr.message).toBe('gluster volume start v on gfs-1 gave no answer within 60s; it may or may not have been applied');
  });

  test('a CLI usage error (no XML) is OPERATION_FAILED with the reason, not the usage text', async () => {
    const err = await gkubeErrorOf(replay(['volume list', { exitCode: 1, stderr: usageErrorStderr }]).port.volumeNames());
    expect(err.message).toBe('gluster volume list failed on gfs-1 (exit 1): Please provide a valid hostname/ip other than localhost, 127.0.0.1 or loopback address (0.0.0.0 to 0.255.255.255).');
  });

  test('an answer that is not gluster XML is OPERATION_FAILED naming the command', async () => {
    const err = await gkubeErrorOf(replay(['volume list', { stdout: '<cliOutput><opRet>0</opRet>' }]).port.volumeNames());
    expect(err.message).toBe('gluster volume list on gfs-1: unreadable gluster XML: <cliOutput> is not closed (line 1)');
  });

  test.each<[string, (port: ReturnType<typeof replay>['port']) => Promise<unknown>, string]>([
    ['a name starting with -', (p) => p.volumeInfo('-x'), 'gluster volume name "-x" must be'],
    ['the name all', (p) => p.startVolume('all'), 'gluster volume name "all" must be'],
    ['a name with a space', (p) => p.deleteVolume('a b'), 'gluster volume name "a b" must be'],
    ['a loopback brick', (p) => p.createVolume('v', { bricks: ['localhost:/b'], replica: 1, arbiter: false, force: true }), 'not a loopback one'],
    ['a relative brick', (p) => p.createVolume('v', { bricks: ['h:b'], replica: 1, arbiter: false, force: true }), 'must be host:/absolute/path'],
    ['a brick count that is not a multiple of replica', (p) => p.createVolume('v', { bricks: ['h:/a', 'h:/b'], replica: 3, arbiter: false, force: true }), 'multiple of the replica count 3'],
    ['arbiter without replica 3', (p) => p.createVolume('v', { bricks: ['h:/a', 'h:/b'], replica: 2, arbiter: true, force: true }), 'needs replica 3'],
    ['an option key without a dot', (p) => p.setOption('v', 'quota', 'on'), 'must be dotted words'],
    ['an option value with a newline', (p) => p.setOption('v', 'user.a', 'x\ny'), 'no control characters'],
    ['a quota size gluster refuses', (p) => p.limitUsage('v', '/', '1G'), 'quota size "1G"'],
    ['a zero quota size', (p) => p.limitUsage('v', '/', '0GB'), 'quota size "0GB"'],
    ['a quota path with ..', (p) => p.limitUsage('v', '/a/../b', '1GB'), 'quota path'],
  ])('%s is INVALID_INPUT before gluster runs', async (_, call, why) => {
    const r = replay();
    const err = await gkubeErrorOf(call(r.port));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.message).toContain(why);
    expect(r.calls).toEqual([]);
  });
});

describe('ssh', () => {
  test('the remote command survives the remote shell argument for argument', async () => {
    const args = ['--mode=script', 'volume', 'set', 'v', 'user.gkube.note', `it's "a" $HOME \`id\` ; rm -rf / & ünï`, '--xml'];
    const argv = sshArgv('root@gfs-1', args, 10);
    expect(argv.slice(0, 8)).toEqual(['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-T', '--', 'root@gfs-1', argv[7]]);
    // What sshd does with the command string: hand it to the login shell.
    const echoed = await execa('sh', ['-c', argv[7]!.replace(/^gluster /, "printf '%s\\0' ")]);
    expect(echoed.stdout.split('\0').slice(0, -1)).toEqual(args);
  });

  test('plain words stay unquoted, everything else is single-quoted', () => {
    expect(['volume', 'vm:/data/b1', '--xml', '', "a'b", 'a b'].map(shellQuote)).toEqual(['volume', 'vm:/data/b1', '--xml', "''", `'a'\\''b'`, "'a b'"]);
  });

  test('an ssh target that is not user@host is INVALID_CONFIG', () => {
    for (const target of ['-oProxyCommand=x@h', 'root@', 'gfs-1', 'root@gfs 1']) {
      const err = gkubeErrorFrom(() => connectGluster({ ssh: target }));
      expect(err).toBeInstanceOf(GkubeError);
      expect(err.code).toBe('INVALID_CONFIG');
    }
  });
});
