// The test harness: real etcd, GlusterFS, docker-registry and git, started on loopback and removed afterwards.
export { startEtcd, type EtcdCluster, type EtcdMember } from './etcd.js';
export { GlusterPool, glusterHost, glusterChecked, type TestVolume } from './gluster.js';
export { startRegistry, sha256, mediaTypes, type TestRegistry, type PushedImage } from './registry.js';
export { GitRepo } from './git.js';
export { freePort, waitUntil, sleep, tempDir, requireProgram, ServiceProcess, TempDirs } from './process.js';
