/**
 * Offline checks of the Dockerfile and the Kubernetes manifests (no Docker or cluster
 * here). The kustomizations are resolved by test/k8s/kustomize.ts, then every rule that a
 * cluster would only show at run time is checked on the objects: selectors match labels,
 * Services and probes name real container ports, probes hit the admin routes on the admin
 * port, every GFS_ env var and argument is a flag of the command the container runs, the
 * master group and the etcd members name each other consistently, PDBs select a workload,
 * pods run as non-root with no capabilities, and the external-etcd overlay removes etcd
 * entirely and patches only what it says.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { containersOf, keyOf, kustomizeBuild, readKustomization, type K8sObject } from '../k8s/kustomize';

const root = path.resolve(__dirname, '..', '..', '..');
const k8s = path.join(root, 'deploy', 'k8s');
const gfs = path.join(root, 'dist', 'cli', 'gfs.js');
const gfsCommands = ['master', 'chunkserver', 'gateway'];

const helpCache = new Map<string, string>();
function help(bin: string, args: string[]): string {
  const key = [bin, ...args].join(' ');
  if (!helpCache.has(key)) {
    // etcd prints its usage on stdout; 2>&1 either way.
    helpCache.set(key, execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  }
  return helpCache.get(key)!;
}
const longFlags = (text: string) => new Set([...text.matchAll(/--([a-z0-9-]+)/g)].map((m) => m[1]!));
const gfsFlags = (command: string) => longFlags(help(process.execPath, [gfs, command, '--help']));
const envName = (flag: string) => `GFS_${flag.toUpperCase().replace(/-/g, '_')}`;

/** A container of the gfs image (REGISTRY/gfs:TAG or @DIGEST once `kustomize edit set image` renamed it). */
const isGfs = (c: { image: string }) => /(^|\/)gfs([:@]|$)/.test(c.image);
const workloadKinds = new Set(['StatefulSet', 'Deployment']);
const workloads = (objs: K8sObject[]) => objs.filter((o) => workloadKinds.has(o.kind));
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
const envOf = (c: any): Map<string, any> => new Map((c.env ?? []).map((e: any) => [e.name, e]));
const envValue = (c: any, name: string): string => {
  const e = envOf(c).get(name);
  if (e?.value === undefined) throw new Error(`${c.name}: no literal ${name}`);
  return e.value;
};
const portOf = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));
/** The container port a probe or Service targetPort names (by name or number). */
const containerPort = (c: any, port: string | number) => (c.ports ?? []).find((p: any) => p.name === port || p.containerPort === port);
const secretFileFlags = ['GFS_CREDENTIALS', 'GFS_S3_CREDENTIALS', 'GFS_CLUSTER_SECRET_FILE'];
/** The Secret volume a file is on (mounted read-only), or undefined. */
const secretOf = (w: K8sObject, c: any, file: string) => {
  const mount = (c.volumeMounts ?? []).find((m: any) => file.startsWith(`${m.mountPath}/`));
  const secret = (w.spec.template.spec.volumes ?? []).find((v: any) => v.name === mount?.name)?.secret;
  return mount?.readOnly && secret?.secretName ? secret : undefined;
};
const podNames = (sts: K8sObject) => Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}`);
const podDns = (sts: K8sObject, pod: string) => `${pod}.${sts.spec.serviceName}.$(POD_NAMESPACE).svc`;

const base = kustomizeBuild(k8s);
const external = kustomizeBuild(path.join(k8s, 'overlays', 'external-etcd'));
const byKey = (objs: K8sObject[], key: string) => objs.find((o) => keyOf(o) === key)!;

t.test('deploy: every manifest file is listed in its kustomization, and every listed path exists', async (t) => {
  const dirs = [k8s, path.join(k8s, 'base'), path.join(k8s, 'overlays', 'external-etcd')];
  const listed = new Set<string>();
  for (const dir of dirs) {
    const k = readKustomization(dir);
    for (const p of [...(k.resources ?? []), ...(k.patches ?? []).map((x: { path: string }) => x.path)]) {
      const full = path.resolve(dir, p);
      t.ok(fs.existsSync(full), `${path.relative(root, dir)}: ${p} exists`);
      listed.add(full);
    }
  }
  const yamlFiles = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) && e.name !== 'kustomization.yaml' ? [path.join(dir, e.name)] : []);
  for (const file of yamlFiles(k8s)) t.ok(listed.has(file), `${path.relative(root, file)} is listed in a kustomization`);
  t.same(workloads(base).map(keyOf).sort(), ['Deployment/gfs-gateway', 'StatefulSet/gfs-chunkserver', 'StatefulSet/gfs-etcd', 'StatefulSet/gfs-master']);
  t.same(workloads(base).filter((w) => isGfs(containersOf(w)[0])).map((w) => containersOf(w)[0].args[0]).sort(), ['chunkserver', 'gateway', 'master'], 'one workload per gfs server');
  for (const o of base) t.ok(o.kind === 'Namespace' || o.metadata.namespace === 'gfs', `${keyOf(o)} lands in namespace gfs`);
});

for (const [variant, objs] of [['base', base], ['external-etcd', external]] as const) {
  t.test(`deploy (${variant}): selectors, Services, PDBs and volumes fit together`, async (t) => {
    for (const w of workloads(objs)) {
      const labels = w.spec.template.metadata.labels;
      t.ok(matches(w.spec.selector.matchLabels, labels), `${keyOf(w)}: selector matches its pod labels`);
      const spec = w.spec.template.spec;
      const volumes = new Set([...(spec.volumes ?? []), ...(w.spec.volumeClaimTemplates ?? []).map((v: any) => v.metadata)].map((v: any) => v.name));
      for (const c of containersOf(w)) {
        for (const m of c.volumeMounts ?? []) t.ok(volumes.has(m.name), `${keyOf(w)}/${c.name}: volume ${m.name} exists`);
      }
      if (w.kind === 'StatefulSet') {
        t.ok(w.spec.volumeClaimTemplates?.length, `${keyOf(w)} keeps its data on a volume claim`);
        const svc = byKey(objs, `Service/${w.spec.serviceName}`);
        t.ok(svc, `${keyOf(w)}: its serviceName ${w.spec.serviceName} exists`);
        t.equal(svc?.spec.clusterIP, 'None', `${keyOf(w)}: its Service is headless (stable pod DNS names)`);
        t.equal(svc?.spec.publishNotReadyAddresses, true, `${keyOf(w)}: peers find each other before they are ready`);
      }
    }
    for (const svc of objs.filter((o) => o.kind === 'Service')) {
      const selected = workloads(objs).filter((w) => matches(svc.spec.selector, w.spec.template.metadata.labels));
      t.equal(selected.length, 1, `Service ${svc.metadata.name} selects exactly one workload`);
      const c = selected[0] ? containersOf(selected[0])[0] : undefined;
      for (const p of svc.spec.ports) {
        const cp = c && containerPort(c, p.targetPort ?? p.port);
        t.ok(cp, `Service ${svc.metadata.name}: port ${p.name} targets a container port`);
        t.equal(cp?.containerPort, p.port, `Service ${svc.metadata.name}: port ${p.name} is the container's port number`);
      }
    }
    for (const pdb of objs.filter((o) => o.kind === 'PodDisruptionBudget')) {
      const selected = workloads(objs).filter((w) => matches(pdb.spec.selector.matchLabels, w.spec.template.metadata.labels));
      t.equal(selected.length, 1, `PDB ${pdb.metadata.name} selects exactly one workload`);
      const replicas = selected[0]?.spec.replicas ?? 0;
      if (pdb.spec.minAvailable !== undefined) t.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < replicas, `PDB ${pdb.metadata.name}: minAvailable leaves room for a drain`);
      else t.ok(pdb.spec.maxUnavailable >= 1 && pdb.spec.maxUnavailable < replicas, `PDB ${pdb.metadata.name}: maxUnavailable keeps a majority`);
    }
    for (const w of workloads(objs)) {
      t.ok(objs.some((o) => o.kind === 'PodDisruptionBudget' && matches(o.spec.selector.matchLabels, w.spec.template.metadata.labels)), `${keyOf(w)} has a PDB`);
    }
  });

  t.test(`deploy (${variant}): pods are non-root, capless, bounded, spread, and stop gracefully`, async (t) => {
    for (const w of workloads(objs)) {
      const spec = w.spec.template.spec;
      const name = keyOf(w);
      t.equal(spec.securityContext?.runAsNonRoot, true, `${name}: runAsNonRoot`);
      t.ok(spec.securityContext?.runAsUser > 0, `${name}: a numeric non-root uid`);
      t.equal(spec.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${name}: seccomp RuntimeDefault (restricted pod security)`);
      t.ok(spec.terminationGracePeriodSeconds > 0, `${name}: a termination grace period`);
      const anti = spec.affinity?.podAntiAffinity ?? {};
      const terms = [...(anti.requiredDuringSchedulingIgnoredDuringExecution ?? []), ...(anti.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p: any) => p.podAffinityTerm)];
      t.ok(terms.some((term: any) => term.topologyKey === 'kubernetes.io/hostname' && matches(term.labelSelector.matchLabels, w.spec.template.metadata.labels)), `${name}: anti-affinity across nodes against its own pods`);
      for (const c of containersOf(w)) {
        t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${name}/${c.name}: no privilege escalation`);
        t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${name}/${c.name}: read-only root filesystem`);
        t.same(c.securityContext?.capabilities?.drop, ['ALL'], `${name}/${c.name}: drops ALL capabilities`);
        t.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${name}/${c.name}: cpu and memory requests`);
        t.ok(c.resources?.limits?.memory, `${name}/${c.name}: a memory limit`);
        const defined = new Set<string>();
        for (const e of c.env ?? []) {
          for (const m of String(e.value ?? '').matchAll(/\$\(([A-Z_]+)\)/g)) t.ok(defined.has(m[1]!), `${name}/${c.name}: ${e.name} uses $(${m[1]}) defined before it`);
          defined.add(e.name);
        }
        for (const a of c.args ?? []) for (const m of String(a).matchAll(/\$\(([A-Z_]+)\)/g)) t.ok(defined.has(m[1]!), `${name}/${c.name}: argument uses $(${m[1]}) from env`);
      }
    }
    const gw = byKey(objs, 'Deployment/gfs-gateway');
    t.ok(containersOf(gw)[0].lifecycle?.preStop, 'the gateway waits in preStop until the Service has dropped it');
  });

  t.test(`deploy (${variant}): gfs containers use real flags, and probes hit the admin routes on the admin port`, async (t) => {
    const adminSource = fs.readFileSync(path.join(root, 'src', 'common', 'admin-http.ts'), 'utf8') + fs.readFileSync(path.join(root, 'src', 'gateway', 'gateway.ts'), 'utf8');
    for (const route of ['/healthz', '/readyz']) t.match(adminSource, `'${route}'`, `the servers answer ${route}`);
    for (const w of workloads(objs)) {
      for (const c of containersOf(w).filter(isGfs)) {
        const [command, ...rest] = c.args as string[];
        t.ok(gfsCommands.includes(command!), `${keyOf(w)} runs gfs ${command}`);
        const flags = gfsFlags(command!);
        const gfsEnv = new Set([...flags].map(envName));
        for (const e of (c.env ?? []).filter((x: { name: string }) => x.name.startsWith('GFS_'))) t.ok(gfsEnv.has(e.name), `${keyOf(w)}: ${e.name} is a flag of gfs ${command}`);
        for (const a of rest.filter((x) => x.startsWith('--'))) t.ok(flags.has(a.slice(2).split('=')[0]!), `${keyOf(w)}: ${a} is a flag of gfs ${command}`);
        const adminAddr = envValue(c, command === 'gateway' ? 'GFS_REST' : 'GFS_ADMIN');
        for (const [probe, route] of [[c.readinessProbe, '/readyz'], [c.livenessProbe, '/healthz']] as const) {
          t.equal(probe?.httpGet?.path, route, `${keyOf(w)}: probe on ${route}`);
          t.equal(containerPort(c, probe?.httpGet?.port)?.containerPort, portOf(adminAddr), `${keyOf(w)}: ${route} probed on the admin port`);
        }
        // Secrets a server reads are files on read-only Secret volumes, readable by the pod's group.
        for (const name of secretFileFlags) {
          const file = envOf(c).get(name)?.value;
          if (file === undefined) continue;
          const secret = secretOf(w, c, file);
          t.ok(secret, `${keyOf(w)}: ${name} is in a read-only Secret volume`);
          const ctx = w.spec.template.spec.securityContext;
          t.ok(ctx.fsGroup === ctx.runAsGroup && (secret?.defaultMode & 0o040), `${keyOf(w)}: the server's group can read ${name}`);
        }
        // The bootstrap token is written by the master: on its volume, not a Secret.
        const boot = envOf(c).get('GFS_BOOTSTRAP_CREDENTIALS')?.value;
        if (boot !== undefined) t.ok(boot.startsWith(`${envValue(c, 'GFS_DATA')}/`), `${keyOf(w)}: the bootstrap token is written into its data dir`);
        if (command !== 'gateway') {
          t.ok(containerPort(c, portOf(envValue(c, 'GFS_LISTEN'))), `${keyOf(w)}: the listen port is a container port`);
          const data = envValue(c, 'GFS_DATA');
          const claims = new Set(w.spec.volumeClaimTemplates.map((v: any) => v.metadata.name));
          t.ok(c.volumeMounts.some((m: any) => claims.has(m.name) && (data === m.mountPath || data.startsWith(`${m.mountPath}/`))), `${keyOf(w)}: GFS_DATA is on its volume claim`);
          t.equal(envValue(c, 'GFS_ADVERTISE'), `${podDns(w, '$(POD_NAME)')}:${portOf(envValue(c, 'GFS_LISTEN'))}`, `${keyOf(w)} advertises its pod DNS name`);
        }
      }
    }
  });

  t.test(`deploy (${variant}): the master group, its clients and etcd name each other consistently`, async (t) => {
    const masters = byKey(objs, 'StatefulSet/gfs-master');
    const m = containersOf(masters)[0];
    t.equal(envValue(m, 'GFS_ID'), '$(POD_NAME)', 'a master id is its pod name (stable ordinal)');
    t.ok(masters.spec.replicas >= 3 && masters.spec.replicas % 2 === 1, 'an odd master group of at least 3');
    const grpcPort = portOf(envValue(m, 'GFS_LISTEN'));
    const peers = podNames(masters).map((pod) => `${pod}=${podDns(masters, pod)}:${grpcPort}`);
    t.same(envValue(m, 'GFS_PEERS').split(','), peers, '--peers lists every master pod by DNS name');
    const addrs = peers.map((p) => p.split('=')[1]);
    for (const key of ['StatefulSet/gfs-chunkserver', 'Deployment/gfs-gateway']) {
      t.same(envValue(containersOf(byKey(objs, key))[0], 'GFS_MASTERS').split(','), addrs, `${key} knows every master`);
    }
    // Heartbeats carry the cluster secret: masters and chunkservers read the same one.
    const cs = byKey(objs, 'StatefulSet/gfs-chunkserver');
    const clusterSecret = (w: K8sObject) => {
      const c = containersOf(w)[0];
      return secretOf(w, c, envValue(c, 'GFS_CLUSTER_SECRET_FILE'))?.secretName;
    };
    t.ok(clusterSecret(masters), 'masters check heartbeats against a cluster secret');
    t.equal(clusterSecret(cs), clusterSecret(masters), 'chunkservers send the masters\' cluster secret');
    t.ok(envOf(containersOf(byKey(objs, 'Deployment/gfs-gateway'))[0]).get('GFS_CREDENTIALS'), 'the gateway has its own token');
    const etcdUrls = envValue(m, 'GFS_ETCD').split(',');
    const etcd = byKey(objs, 'StatefulSet/gfs-etcd');
    if (variant === 'external-etcd') {
      t.notOk(etcd, 'no etcd StatefulSet');
      t.notMatch(JSON.stringify(objs), /gfs-etcd/, 'nothing refers to the in-cluster etcd');
      t.ok(etcdUrls.every((u) => /^http:\/\/[^/]+:\d+$/.test(u)), 'masters point at external etcd URLs');
      // Only the etcd objects and the master's GFS_ETCD differ from the base.
      const strip = (o: K8sObject) => JSON.parse(JSON.stringify(o), (key, value) => (key === 'env' ? value.filter((e: { name: string }) => e.name !== 'GFS_ETCD') : value));
      const baseRest = base.filter((o) => !o.metadata.name.startsWith('gfs-etcd'));
      t.same(objs.map(strip), baseRest.map(strip), 'the overlay changes nothing else');
      return;
    }
    const e = containersOf(etcd)[0];
    const args = new Map((e.args as string[]).map((a) => [a.slice(2, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] as const));
    const etcdFlags = longFlags(help(e.command[0], ['--help']));
    for (const flag of args.keys()) t.ok(etcdFlags.has(flag), `--${flag} is a flag of ${e.command[0]}`);
    const clientPort = containerPort(e, 'client').containerPort;
    const peerPort = containerPort(e, 'peer').containerPort;
    t.same(etcdUrls, podNames(etcd).map((pod) => `http://${podDns(etcd, pod)}:${clientPort}`), 'masters use every etcd member');
    t.equal(args.get('initial-cluster'), podNames(etcd).map((pod) => `${pod}=http://${podDns(etcd, pod)}:${peerPort}`).join(','), 'etcd members name each other by pod DNS name');
    t.equal(args.get('name'), '$(POD_NAME)');
    t.equal(args.get('advertise-client-urls'), `http://${podDns(etcd, '$(POD_NAME)')}:${clientPort}`);
    t.equal(args.get('initial-advertise-peer-urls'), `http://${podDns(etcd, '$(POD_NAME)')}:${peerPort}`);
    t.equal(portOf(args.get('listen-client-urls')!), clientPort);
    t.equal(portOf(args.get('listen-peer-urls')!), peerPort);
    t.ok(e.volumeMounts.some((v: any) => args.get('data-dir')!.startsWith(`${v.mountPath}/`) && v.name === etcd.spec.volumeClaimTemplates[0].metadata.name), 'etcd data on its claim');
    t.equal(e.readinessProbe.httpGet.path, '/health');
    t.equal(containerPort(e, e.readinessProbe.httpGet.port)?.containerPort, clientPort, 'etcd probed on its client port');
  });
}

t.test('deploy: the Dockerfile is pinned, multi-stage, non-root, and copies only paths that exist', async (t) => {
  const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const froms = [...dockerfile.matchAll(/^FROM (\S+)(?: AS (\S+))?$/gm)];
  t.ok(froms.length >= 2, 'multi-stage');
  for (const [, image] of froms) t.match(image!, /^node:20[\w.-]*@sha256:[0-9a-f]{64}$/, `FROM ${image} is node 20 pinned by digest`);
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const final = stages[stages.length - 1]!;
  t.match(final, /^USER (?!0\b|root\b)\S+$/m, 'the final stage runs as a non-root user');
  t.match(dockerfile, /RUN npm ci\b/, 'dependencies from the lockfile (npm ci)');
  t.notMatch(dockerfile, /npm install/, 'never npm install');
  // The final stage's node_modules come from a stage that installed production deps only.
  const fromStage = /^COPY --from=(\S+) \S*node_modules/m.exec(final)?.[1];
  const depsStage = stages.find((s) => new RegExp(` AS ${fromStage}$`, 'm').test(s.split('\n')[0]!));
  t.match(depsStage ?? '', /npm ci --omit=dev/, `node_modules in the image come from a production-only install (stage ${fromStage})`);
  t.notMatch(final, /^RUN npm/m, 'nothing is installed in the final stage');
  const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
  t.ok(copies.length > 0);
  for (const p of copies) t.ok(fs.existsSync(path.join(root, p)), `COPY source ${p} exists`);
  t.match(dockerfile, /ENTRYPOINT \["node", "\/app\/dist\/cli\/gfs\.js"\]/);
  const uid = /^USER (\d+)/m.exec(final)?.[1];
  for (const w of workloads(base).filter((x) => isGfs(containersOf(x)[0]))) {
    t.equal(String(w.spec.template.spec.securityContext.runAsUser), uid, `${keyOf(w)} runs as the image's uid`);
  }
  for (const bin of ['gfs', 'gfsctl']) t.ok(fs.existsSync(path.join(root, 'cli', `${bin}.ts`)), `${bin} is built from cli/`);
  // The image has production dependencies only: the code it runs must import no other.
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const dev = Object.keys(pkg.devDependencies ?? {}).filter((d) => !d.startsWith('@types/'));
  const files = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []);
  for (const file of ['src', 'cli', 'gen'].flatMap((d) => files(path.join(root, d)))) {
    const imports = [...fs.readFileSync(file, 'utf8').matchAll(/(?:from|import|require\()\s*'([^'.][^']*)'/g)].map((m) => m[1]!);
    const devImports = imports.filter((i) => dev.some((d) => i === d || i.startsWith(`${d}/`)));
    t.same(devImports, [], `${path.relative(root, file)} imports no devDependency`);
  }
});
