// `npm run emulator`: the built emulator as a process, as a developer or the demo starts it.
import { describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import YAML from 'yaml';
import { tempDir, waitUntil } from '../harness/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const emulatorBin = join(root, 'dist/emulator/kube-emulator.mjs');

describe('the kube-emulator command', () => {
  test('writes a kubeconfig once ready, serves kubectl, and removes its state on SIGTERM', async () => {
    const dir = await tempDir('emu-cli');
    const kubeconfig = join(dir, 'kubeconfig');
    const stateDir = join(dir, 'state');
    const proc = execa('node', [emulatorBin, '--kubeconfig', kubeconfig, '--state-dir', stateDir, '--kube-version', '1.25'], { reject: false });
    try {
      await waitUntil('the kubeconfig', async () => existsSync(kubeconfig), 20_000);
      const config = YAML.parse(await readFile(kubeconfig, 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
      expect(config.clusters[0]!.cluster.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const version = await execa('kubectl', ['--kubeconfig', kubeconfig, 'version', '-o', 'json']);
      expect((JSON.parse(version.stdout) as { serverVersion: { minor: string } }).serverVersion.minor).toBe('25');
      const ns = await execa('kubectl', ['--kubeconfig', kubeconfig, 'get', 'ns', '-o', 'name']);
      expect(ns.stdout.split('\n')).toContain('namespace/default');
    } finally {
      proc.kill('SIGTERM');
    }
    const result = await proc;
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('kube-emulator serving at https://127.0.0.1:');
    // The state dir was given, so it stays, but what the emulator made inside it is gone.
    const left = await readdir(stateDir).catch(() => []);
    // The kubeconfig was written beside itself and renamed (a reader never sees it half written): no temporary file stays.
    const beside = (await readdir(dir)).sort();
    await rm(dir, { recursive: true, force: true });
    expect(left).toEqual([]);
    expect(beside).toEqual(['kubeconfig', 'state']);
  });

  test('--http serves plain HTTP without credentials, as the old insecure port did', async () => {
    const dir = await tempDir('emu-cli-http');
    const kubeconfig = join(dir, 'kubeconfig');
    const proc = execa('node', [emulatorBin, '--kubeconfig', kubeconfig, '--http'], { reject: false });
    try {
      await waitUntil('the kubeconfig', async () => existsSync(kubeconfig), 20_000);
      const ns = await execa('kubectl', ['--kubeconfig', kubeconfig, 'get', 'ns', 'default', '-o', 'name'], { reject: false });
      expect(ns.stderr).toBe('');
      expect(ns.stdout).toBe('namespace/default');
    } finally {
      proc.kill('SIGTERM');
      await proc;
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a bad --kube-version is refused with exit 2, naming the flag', async () => {
    const r = await execa('node', [emulatorBin, '--kubeconfig', '/dev/null', '--kube-version', 'latest'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('error: --kube-version must look like 1.31, not "latest"');
  });
});
