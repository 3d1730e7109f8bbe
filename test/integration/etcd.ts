/** A real etcd (Debian's etcd-server) on random loopback ports in a temp dir, for tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { tempDir } from './helpers';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export interface EtcdProc { url: string; child: ChildProcess; pause(): void; resume(): void; stop(): Promise<void> }

export async function startEtcd(t: { teardown(fn: () => unknown): void }): Promise<EtcdProc> {
  const dir = tempDir(t, 'gfs-etcd-');
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const log = fs.openSync(path.join(dir, 'etcd.log'), 'a');
  const child = spawn('etcd', [
    '--name', 'test', '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `test=${peer}`, '--log-level', 'warn',
  ], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: EtcdProc = {
    url,
    child,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    },
  };
  t.teardown(() => proc.stop());
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return proc;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`etcd did not start; see ${dir}/etcd.log`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
