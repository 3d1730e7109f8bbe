/**
 * Runs the pods of rendered manifests as local processes, as a kubelet would: the
 * container's command (or the image's ENTRYPOINT from the Dockerfile) with its args and
 * exactly its env (`$(VAR)` expanded, downward-API fields filled in), one data dir per
 * volume claim, probes polled over HTTP. Each pod gets its own loopback address
 * (127.A.B.n: Linux routes all of 127/8 to lo), which stands for its pod IP: the
 * container's `0.0.0.0` binds become that address, and every pod DNS name of a headless
 * Service (`<pod>.<service>.<ns>.svc`) is replaced by the address of the pod it names
 * (a name map instead of a DNS server or /etc/hosts).
 *
 * Invariants: a pod's volumes outlive the pod (a replaced pod gets the same dirs);
 * every process started is killed by `stopAll`, which the test registers at teardown.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { containersOf, type K8sObject } from './kustomize';

export interface Pod {
  name: string;
  workload: K8sObject;
  container: any;
  ip: string;
  labels: Record<string, string>;
  /** mountPath → host dir, for every volume (claims and emptyDirs). */
  mounts: Map<string, string>;
  env: Record<string, string>;
  argv: string[];
  child?: ChildProcess;
  exited?: Promise<void>;
}

export interface EmulatorOptions {
  dir: string;
  repoRoot: string;
  /** Replica counts to use instead of the manifests'. */
  replicas?: Record<string, number>;
  /** Pod labels a cluster would add (e.g. the node's zone), by pod name. */
  extraLabels?: (pod: string) => Record<string, string>;
  /** Secrets the operator creates (name → key → content), for `secret` volumes. */
  secrets?: Record<string, Record<string, string>>;
}

export class PodEmulator {
  readonly pods = new Map<string, Pod>();
  /** DNS name → pod IP. */
  readonly names = new Map<string, string>();
  private readonly net: string;
  private nextHost = 1;
  private readonly entrypoint: string[];

  constructor(private readonly objects: K8sObject[], private readonly opts: EmulatorOptions) {
    // A random /16 inside 127/8 (never 127.0.x): no clash with servers on 127.0.0.1.
    this.net = `127.${crypto.randomInt(1, 255)}.${crypto.randomInt(0, 256)}`;
    const dockerfile = fs.readFileSync(path.join(opts.repoRoot, 'Dockerfile'), 'utf8');
    this.entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!);
  }

  workload(name: string): K8sObject {
    const w = this.objects.find((o) => (o.kind === 'StatefulSet' || o.kind === 'Deployment') && o.metadata.name === name);
    assert.ok(w, `no workload ${name}`);
    return w;
  }

  /** Creates (does not start) the pods of a workload: ordinals for a StatefulSet. */
  createPods(name: string): Pod[] {
    const w = this.workload(name);
    const n = this.opts.replicas?.[name] ?? w.spec.replicas;
    return Array.from({ length: n }, (_, i) => {
      const podName = w.kind === 'StatefulSet' ? `${name}-${i}` : `${name}-${crypto.randomBytes(3).toString('hex')}`;
      const mounts = new Map<string, string>();
      const container = containersOf(w)[0];
      for (const m of container.volumeMounts ?? []) {
        const dir = path.join(this.opts.dir, podName, m.name);
        fs.mkdirSync(dir, { recursive: true });
        mounts.set(m.mountPath, dir);
        const secret = (w.spec.template.spec.volumes ?? []).find((v: any) => v.name === m.name)?.secret;
        if (secret) this.writeSecret(dir, secret);
      }
      const pod: Pod = {
        name: podName, workload: w, container, ip: '', mounts, env: {}, argv: [],
        labels: { ...w.spec.template.metadata.labels, ...this.opts.extraLabels?.(podName) },
      };
      this.pods.set(podName, pod);
      this.assignIp(pod);
      return pod;
    });
  }

  /** A Secret the operator creates (`kubectl create secret generic`): pods created from now on mount it. */
  addSecret(name: string, data: Record<string, string>): void {
    this.opts.secrets = { ...this.opts.secrets, [name]: data };
  }

  /** A secret volume: one file per key, as the kubelet projects it (a missing secret keeps the pod from starting). */
  private writeSecret(dir: string, volume: { secretName: string; defaultMode?: number }): void {
    const data = this.opts.secrets?.[volume.secretName];
    assert.ok(data, `secret ${volume.secretName} does not exist: the pod cannot start`);
    for (const [key, content] of Object.entries(data)) fs.writeFileSync(path.join(dir, key), content, { mode: volume.defaultMode ?? 0o644 });
  }

  /** Gives a pod a fresh IP (a rescheduled pod does) and points its DNS names at it. */
  assignIp(pod: Pod): void {
    pod.ip = `${this.net}.${this.nextHost++}`;
    assert.ok(this.nextHost < 255, 'out of pod IPs');
    if (pod.workload.kind !== 'StatefulSet') return;
    const ns = pod.workload.metadata.namespace ?? 'default';
    const fqdn = `${pod.name}.${pod.workload.spec.serviceName}.${ns}.svc`;
    this.names.set(fqdn, pod.ip);
    this.names.set(`${fqdn}.cluster.local`, pod.ip);
  }

  /** The container's env and argv as the kubelet would give them, then mapped to this host. */
  private resolve(pod: Pod): void {
    const env: Record<string, string> = {};
    const expand = (s: string) => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, v: string) => env[v] ?? all);
    for (const e of pod.container.env ?? []) {
      if (e.value !== undefined) env[e.name] = expand(String(e.value));
      else env[e.name] = this.fieldRef(pod, e.valueFrom?.fieldRef?.fieldPath);
    }
    const command: string[] = pod.container.command ?? this.entrypoint;
    const argv = [...command, ...(pod.container.args ?? [])].map((a) => expand(String(a)));
    for (const k of Object.keys(env)) env[k] = this.toHost(pod, env[k]!);
    pod.env = env;
    pod.argv = argv.map((a) => this.toHost(pod, a));
  }

  private fieldRef(pod: Pod, fieldPath: string | undefined): string {
    if (fieldPath === 'metadata.name') return pod.name;
    if (fieldPath === 'metadata.namespace') return pod.workload.metadata.namespace ?? 'default';
    if (fieldPath === 'status.podIP') return pod.ip;
    const label = /^metadata\.labels\['(.+)'\]$/.exec(fieldPath ?? '');
    // A missing label reads as "", as the kubelet gives it.
    if (label) return pod.labels[label[1]!] ?? '';
    throw new Error(`${pod.name}: fieldRef ${fieldPath} is not emulated`);
  }

  /** Pod IP for 0.0.0.0, addresses for DNS names, host dirs for paths under a mount. */
  private toHost(pod: Pod, value: string): string {
    let v = value.replaceAll('0.0.0.0', pod.ip);
    for (const name of [...this.names.keys()].sort((a, b) => b.length - a.length)) v = v.replaceAll(name, this.names.get(name)!);
    // A path value, alone or after `--flag=`.
    const m = /^(--[a-z0-9-]+=)?(\/.*)$/.exec(v);
    if (m) {
      for (const [mountPath, dir] of [...pod.mounts].sort((a, b) => b[0].length - a[0].length)) {
        if (m[2] === mountPath || m[2]!.startsWith(`${mountPath}/`)) return `${m[1] ?? ''}${dir}${m[2]!.slice(mountPath.length)}`;
      }
    }
    return v;
  }

  /** The executable: node for the image's `node`, the built repo for /app, the PATH otherwise. */
  private executable(argv: string[]): string[] {
    return argv.map((a, i) => {
      if (i === 0 && a === 'node') return process.execPath;
      if (a.startsWith('/app/')) return path.join(this.opts.repoRoot, a.slice('/app/'.length));
      return a;
    });
  }

  start(pod: Pod): void {
    assert.ok(!pod.child || pod.child.exitCode !== null || pod.child.signalCode !== null, `${pod.name} is running`);
    this.resolve(pod);
    const log = fs.openSync(path.join(this.opts.dir, `${pod.name}.log`), 'a');
    const [bin, ...args] = this.executable(pod.argv);
    const child = spawn(bin!, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...pod.env }, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    pod.child = child;
    pod.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** GET of a probe (http) or a connect (tcp) on the pod's IP; true on success. */
  async probe(pod: Pod, probe: any): Promise<boolean> {
    const portOf = (p: string | number) => (typeof p === 'number' ? p : pod.container.ports.find((x: any) => x.name === p).containerPort);
    try {
      if (probe.httpGet) {
        const res = await fetch(`http://${pod.ip}:${portOf(probe.httpGet.port)}${probe.httpGet.path}`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status >= 200 && res.status < 400;
      }
      return await new Promise<boolean>((resolve) => {
        const s = net.connect(portOf(probe.tcpSocket.port), pod.ip, () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
    } catch {
      return false;
    }
  }

  async waitReady(pod: Pod, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.probe(pod, pod.container.readinessProbe))) {
      if (pod.child?.exitCode !== null || pod.child?.signalCode !== null) throw new Error(`${pod.name} exited; see ${this.opts.dir}/${pod.name}.log`);
      if (Date.now() > deadline) throw new Error(`${pod.name} not ready within ${timeoutMs} ms; see ${this.opts.dir}/${pod.name}.log`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Pod deletion: SIGTERM, SIGKILL after the grace period. The volumes stay. */
  async delete(pod: Pod): Promise<void> {
    const child = pod.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const graceMs = (pod.workload.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await pod.exited;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.pods.values()].map(async (p) => {
      if (p.child && p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }));
  }

  logTail(pod: Pod, lines = 15): string {
    const file = path.join(this.opts.dir, `${pod.name}.log`);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '';
  }
}
