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

export interface EtcdProc {
  url: string;
  child: ChildProcess;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
  /** kill -9, then start again on the same ports and data dir. */
  restart(): Promise<void>;
}

export async function startEtcd(t: { teardown(fn: () => unknown): void }): Promise<EtcdProc> {
  const dir = tempDir(t, 'gfs-etcd-');
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'test', '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `test=${peer}`, '--log-level', 'warn',
  ];
  const launch = () => {
    const log = fs.openSync(path.join(dir, 'etcd.log'), 'a');
    const child = spawn('etcd', args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    return { child, exited: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
  };
  let current = launch();
  const healthy = async () => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        if ((await fetch(`${url}/health`)).ok) return;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error(`etcd did not start; see ${dir}/etcd.log`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const proc: EtcdProc = {
    url,
    get child() { return current.child; },
    pause: () => current.child.kill('SIGSTOP'),
    resume: () => current.child.kill('SIGCONT'),
    stop: async () => {
      const { child, exited } = current;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    },
    restart: async () => {
      await proc.stop();
      current = launch();
      await healthy();
    },
  };
  t.teardown(() => proc.stop());
  await healthy();
  return proc;
}
