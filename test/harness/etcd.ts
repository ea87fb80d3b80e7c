import { join } from 'node:path';
import { freePort, requireProgram, ServiceProcess, TempDirs, waitUntil } from './process.js';

/** One etcd member started by the harness. */
export interface EtcdMember {
  name: string;
  clientUrl: string;
  process: ServiceProcess;
}

/** A real etcd (one member, or a cluster) on loopback ports, with helpers to kill and restart members. */
export interface EtcdCluster {
  /** Client URLs of every member, in member order. */
  endpoints: string[];
  members: EtcdMember[];
  /** SIGKILLs member `index` (its data directory stays, so it can rejoin). */
  kill(index: number): Promise<void>;
  /** Starts member `index` again with its old data and waits until it reports healthy. */
  restart(index: number): Promise<void>;
  /** Index of the member that is currently the raft leader. */
  leaderIndex(): Promise<number>;
  /** Stops every member and removes all data. */
  stop(): Promise<void>;
}

/** Starts a real etcd from Debian's etcd-server with `members` members (1 or 3) on free loopback ports. */
export async function startEtcd(options: { members?: number } = {}): Promise<EtcdCluster> {
  const size = options.members ?? 1;
  const binary = await requireProgram('etcd', 'etcd-server');
  const temp = new TempDirs();
  const base = await temp.make('etcd');
  const token = `gkube-test-${process.pid}-${Date.now()}`;

  const ports = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const names = ports.map((_, i) => `m${i}`);
  const initialCluster = ports.map((p, i) => `${names[i]}=http://127.0.0.1:${p.peer}`).join(',');

  const members: EtcdMember[] = ports.map((p, i) => {
    const name = names[i]!;
    const clientUrl = `http://127.0.0.1:${p.client}`;
    const peerUrl = `http://127.0.0.1:${p.peer}`;
    const args = [
      '--name', name,
      '--data-dir', join(base, name),
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      // Fast elections keep fault tests short; loopback latency is tiny.
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--log-level', 'warn',
    ];
    return { name, clientUrl, process: new ServiceProcess(`etcd ${name}`, binary, args, join(base, `${name}.log`)) };
  });

  const waitHealthy = async (member: EtcdMember): Promise<void> => {
    try {
      await waitUntil(`etcd member ${member.name} at ${member.clientUrl}`, async () => {
        if (!member.process.running) throw new Error(`exited:\n${member.process.logTail()}`);
        const res = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
        const body = (await res.json()) as { health?: string };
        return body.health === 'true';
      });
    } catch (err) {
      await Promise.all(members.map((m) => m.process.stop('SIGKILL')));
      await temp.removeAll();
      throw err;
    }
  };

  for (const m of members) m.process.start();
  await Promise.all(members.map(waitHealthy));

  return {
    endpoints: members.map((m) => m.clientUrl),
    members,
    async kill(index) {
      await member(index).process.stop('SIGKILL');
    },
    async restart(index) {
      const m = member(index);
      m.process.start();
      await waitHealthy(m);
    },
    async leaderIndex() {
      for (const m of members) {
        if (!m.process.running) continue;
        const status = await maintenanceStatus(m.clientUrl);
        if (status.leader === status.header.member_id) return members.indexOf(m);
      }
      throw new Error('no etcd member reports itself as leader');
    },
    async stop() {
      await Promise.all(members.map((m) => m.process.stop('SIGTERM')));
      await temp.removeAll();
    },
  };

  function member(index: number): EtcdMember {
    const m = members[index];
    if (!m) throw new Error(`no etcd member ${index}`);
    return m;
  }
}

/** etcd's maintenance status through its HTTP/JSON gateway (ids are decimal strings). */
async function maintenanceStatus(clientUrl: string): Promise<{ leader: string; header: { member_id: string } }> {
  const res = await fetch(`${clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2_000) });
  if (!res.ok) throw new Error(`etcd status at ${clientUrl}: HTTP ${res.status}`);
  return (await res.json()) as { leader: string; header: { member_id: string } };
}
