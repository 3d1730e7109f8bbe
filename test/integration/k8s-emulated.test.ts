/**
 * The Kubernetes manifests run as they would in a cluster, without one: every pod of
 * deploy/k8s (3 etcd members, 3 masters, 3 chunkservers, 1 gateway) is started with
 * exactly the args and env its manifest gives, on its own loopback "pod IP", with pod DNS
 * names mapped to those IPs, one data dir per volume claim and the Secrets an operator
 * creates (test/k8s/emulate.ts), following the README's "Run on Kubernetes" steps. Then
 * what a cluster relies on: every readiness and liveness probe passes, the master group
 * elects a leader whose id is its pod name and writes the bootstrap admin token to its
 * volume, files written through the gateway's REST API (bearer token) and S3 API (the
 * token's key pair) read back byte for byte, a chunkserver rescheduled with a new IP comes
 * back as the same node, and deleting the leader master's pod (SIGTERM, then a new pod
 * on the same volume) leaves the gateway serving reads and writes throughout.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { GfsClient } from '../../src/client';
import { initChecksums } from '../../src/common/checksum';
import { kustomizeBuild } from '../k8s/kustomize';
import { PodEmulator, type Pod } from '../k8s/emulate';
import { eventually, gfsctl, tempDir } from './helpers';

const root = path.resolve(__dirname, '..', '..', '..');

interface MasterView { masters: { id: string; role: string }[]; nodesAlive: number }
interface TokenFile { token: string; accessKeyId: string; secretAccessKey: string }

t.test('k8s (emulated): the manifests bring up a cluster that survives a rescheduled chunkserver and a replaced leader', async (t) => {
  await initChecksums();
  const dir = tempDir(t, 'gfs-k8s-');
  const objects = kustomizeBuild(path.join(root, 'deploy', 'k8s'));
  // The node's zone label, as Kubernetes 1.33+ copies it onto the pod; the third pod's
  // node has none (an older cluster), which must read as zone "default".
  const zones = ['zone-a', 'zone-b', ''];
  const k8s = new PodEmulator(objects, {
    dir, repoRoot: root,
    replicas: { 'gfs-chunkserver': 3, 'gfs-gateway': 1 },
    extraLabels: (pod): Record<string, string> => {
      const zone = pod.startsWith('gfs-chunkserver-') ? zones[Number(pod.split('-').pop())] : '';
      return zone ? { 'topology.kubernetes.io/zone': zone } : {};
    },
  });
  let client: GfsClient | undefined;
  t.teardown(async () => {
    await client?.close();
    await k8s.stopAll();
  });
  t.teardown(() => {
    if (t.passing()) return;
    for (const p of k8s.pods.values()) process.stderr.write(`--- ${p.name} ${p.ip}\n${k8s.logTail(p)}\n`);
  });
  const startAll = async (pods: Pod[]) => {
    for (const p of pods) k8s.start(p);
    await Promise.all(pods.map((p) => k8s.waitReady(p)));
  };

  // kubectl create secret generic gfs-cluster-secret; kubectl apply -k deploy/k8s.
  k8s.addSecret('gfs-cluster-secret', { secret: crypto.randomBytes(32).toString('base64url') });
  const etcd = k8s.createPods('gfs-etcd');
  const masters = k8s.createPods('gfs-master');
  const chunkservers = k8s.createPods('gfs-chunkserver');
  await startAll(etcd);
  await startAll(masters);
  await startAll(chunkservers);
  const masterAddrs = chunkservers[0]!.env.GFS_MASTERS!.split(',');

  const adminOf = (p: Pod) => `http://${p.ip}:${p.container.ports.find((x: { name: string }) => x.name === 'admin').containerPort}`;
  const masterView = async (p: Pod) => (await (await fetch(`${adminOf(p)}/status`)).json()) as MasterView;
  const first = (await eventually(async () => {
    const views = await Promise.all(masters.map(async (p) => ({ p, v: await masterView(p).catch(() => undefined) })));
    const leaders = views.filter((x) => x.v?.masters[0]?.role === 'leader');
    const one = leaders.length === 1 ? leaders[0]! : undefined;
    return one?.v && one.v.nodesAlive === 3 ? { p: one.p, v: one.v } : undefined;
  }, 20_000, 'one leader that sees 3 chunkservers'))!;
  t.equal(first.v.masters[0]!.id, first.p.name, 'a master\'s id is its pod name');

  // kubectl exec gfs-master-N -- cat /data/master/bootstrap-credentials.json (on the first leader's volume).
  const bootstrapFile = (p: Pod) => path.join(p.mounts.get('/data')!, 'master', 'bootstrap-credentials.json');
  const admin = (await eventually(() => {
    const file = masters.map(bootstrapFile).find((f) => fs.existsSync(f));
    return file ? JSON.parse(fs.readFileSync(file, 'utf8')) as TokenFile : undefined;
  }, 15_000, 'the bootstrap admin token'))!;
  t.ok(fs.existsSync(bootstrapFile(first.p)), 'the first leader wrote the bootstrap token to its volume');
  t.equal(fs.statSync(bootstrapFile(first.p)).mode & 0o777, 0o600, 'readable by the master alone');
  // The gateway's own token, then its Secret; and a tenant's token for the client side.
  const createToken = async (ns: string, description: string): Promise<TokenFile> => {
    const r = await gfsctl(masterAddrs, ['--json', 'token', 'create', '--ns', ns, '--scope', 'admin', '--description', description], undefined, { GFS_TOKEN: admin.token });
    t.equal(r.code, 0, `token for ${description}: ${r.stderr}`);
    return JSON.parse(r.stdout.toString()) as TokenFile;
  };
  const gatewayToken = await createToken('*', 'gateway');
  k8s.addSecret('gfs-gateway-credentials', { 'credentials.json': JSON.stringify({ token: gatewayToken.token, accessKeyId: gatewayToken.accessKeyId, secretAccessKey: gatewayToken.secretAccessKey }) });
  const tenant = await createToken('k8s,objects', 'tenant');
  const [gateway] = k8s.createPods('gfs-gateway');
  await startAll([gateway!]);

  for (const p of k8s.pods.values()) {
    t.ok(await k8s.probe(p, p.container.readinessProbe), `${p.name}: readiness probe passes`);
    t.ok(await k8s.probe(p, p.container.livenessProbe), `${p.name}: liveness probe passes`);
  }
  t.same(chunkservers.map((p) => p.env.GFS_ZONE), zones, 'GFS_ZONE is the pod\'s zone label, empty without one');
  t.ok(masters.every((p) => p.env.GFS_ETCD!.split(',').length === 3 && !p.env.GFS_ETCD!.includes('svc')), 'masters dial every etcd member by its pod IP');

  client = new GfsClient({ masters: masterAddrs, token: tenant.token });
  const nodes = (await client.admin.nodes()).nodes;
  t.same(chunkservers.map((p) => nodes.find((n) => n.addr === `${p.ip}:7101`)?.zone), ['zone-a', 'zone-b', 'default'], 'the master places by those zones');

  // REST through the gateway pod's Service port, with the tenant's bearer token.
  const rest = `http://${gateway!.ip}:8080`;
  const auth = { authorization: `Bearer ${tenant.token}` };
  t.equal((await fetch(`${rest}/v1/files/k8s/x.bin`)).status, 401, 'the REST API wants a token');
  t.equal((await fetch(`${rest}/v1/namespaces/k8s`, { method: 'PUT', headers: auth })).status, 201, 'namespace k8s created');
  const files = new Map<string, Buffer>();
  const write = async (name: string) => {
    const data = crypto.randomBytes(300_000 + files.size);
    const res = await fetch(`${rest}/v1/files/k8s/${name}`, { method: 'PUT', headers: auth, body: data });
    t.equal(res.status, 201, `PUT ${name}: ${res.status === 201 ? 'created' : await res.text()}`);
    files.set(name, data);
  };
  const readAllBack = async (when: string) => {
    for (const [name, data] of files) {
      const res = await fetch(`${rest}/v1/files/k8s/${name}`, { headers: auth });
      t.ok(res.status === 200 && Buffer.from(await res.arrayBuffer()).equals(data), `${name} reads back ${when}`);
    }
  };
  await write('a.bin');
  await readAllBack('after the first write');
  t.ok((await client.readAll('/k8s/a.bin')).equals(files.get('a.bin')!), 'the client library reads what REST wrote');

  // S3 on the gateway's s3 port, with the tenant token's key pair.
  const s3 = new S3Client({
    endpoint: `http://${gateway!.ip}:9000`, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: tenant.accessKeyId, secretAccessKey: tenant.secretAccessKey },
  });
  t.teardown(() => s3.destroy());
  const object = crypto.randomBytes(100_000);
  await s3.send(new CreateBucketCommand({ Bucket: 'objects' }));
  await s3.send(new PutObjectCommand({ Bucket: 'objects', Key: 'via/s3.bin', Body: object }));
  const got = await s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'via/s3.bin' }));
  t.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(object), 'an S3 put/get through the gateway pod reads back the same bytes');

  // A chunkserver rescheduled: same volume, new pod IP, same node.
  const moved = chunkservers[1]!;
  const csStatus = async () => (await (await fetch(`${adminOf(moved)}/status`)).json()) as { nodeId: string; addr: string };
  const before = await csStatus();
  const oldIp = moved.ip;
  await k8s.delete(moved);
  k8s.assignIp(moved);
  t.not(moved.ip, oldIp, 'the new pod has a new IP');
  k8s.start(moved);
  await k8s.waitReady(moved);
  const after = await csStatus();
  t.equal(after.nodeId, before.nodeId, 'the rescheduled chunkserver is the same node (id from its volume)');
  t.equal(after.addr, `${moved.ip}:7101`, 'and advertises its new address');
  await eventually(async () => {
    const list = (await client!.admin.nodes()).nodes;
    const node = list.find((n) => n.id === before.nodeId);
    return list.length === 3 && node?.addr === after.addr && node.state === 'alive';
  }, 15_000, 'the master to know the node at its new address, and no extra node');
  await write('b.bin');
  await readAllBack('after the reschedule');

  // The leader's pod deleted; writes and reads go on; a new pod on the same volume rejoins.
  const old = first.p;
  await k8s.delete(old);
  await write('c.bin');
  await readAllBack('while the old leader\'s pod is gone');
  const second = (await eventually(async () => {
    const views = await Promise.all(masters.filter((p) => p !== old).map(async (p) => ({ p, v: await masterView(p).catch(() => undefined) })));
    return views.find((x) => x.v?.masters[0]?.role === 'leader')?.p;
  }, 20_000, 'a new leader'))!;
  t.not(second.name, old.name, 'another master took over');
  k8s.start(old);
  await k8s.waitReady(old);
  await eventually(async () => (await masterView(old)).masters[0]?.role === 'follower', 20_000, 'the replaced pod to rejoin as a follower');
  t.equal((await masterView(old)).masters[0]!.id, old.name, 'with the same id');
  await write('d.bin');
  await readAllBack('with the replaced master back');
  for (const p of k8s.pods.values()) t.ok(await k8s.probe(p, p.container.readinessProbe), `${p.name}: ready at the end`);
});
