/**
 * Offline checks of the Dockerfile and the Kubernetes manifests (no Docker or cluster
 * here): every env var a container sets is a real flag of the gfs command it runs,
 * probes hit real admin routes, and the Dockerfile copies paths that exist.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(__dirname, '..', '..', '..');
const gfs = path.join(root, 'dist', 'cli', 'gfs.js');

function flagsOf(command: string): Set<string> {
  const help = execFileSync(process.execPath, [gfs, command, '--help'], { encoding: 'utf8' });
  return new Set([...help.matchAll(/--([a-z0-9-]+)/g)].map((m) => `GFS_${m[1]!.toUpperCase().replace(/-/g, '_')}`));
}

t.test('deploy: every GFS_ env var in the manifests is a flag of the command the container runs', async (t) => {
  const docs = parseAllDocuments(fs.readFileSync(path.join(root, 'deploy', 'k8s', 'gfs.yaml'), 'utf8')).map((d) => d.toJS());
  const workloads = docs.filter((d) => d.kind === 'StatefulSet' || d.kind === 'Deployment');
  t.same(workloads.map((w) => w.metadata.name).sort(), ['gfs-chunkserver', 'gfs-gateway', 'gfs-master']);
  for (const w of workloads) {
    for (const c of w.spec.template.spec.containers) {
      const command = c.args[0];
      t.ok(['master', 'chunkserver', 'gateway'].includes(command), `${w.metadata.name} runs gfs ${command}`);
      const flags = flagsOf(command);
      for (const e of c.env.filter((e: { name: string }) => e.name.startsWith('GFS_'))) {
        t.ok(flags.has(e.name), `${w.metadata.name}: ${e.name} is a flag of gfs ${command}`);
      }
      for (const probe of [c.readinessProbe, c.livenessProbe]) t.match(probe.httpGet.path, /^\/(readyz|healthz)$/);
    }
    if (w.kind === 'StatefulSet') t.ok(w.spec.volumeClaimTemplates?.length, `${w.metadata.name} keeps its data on a volume`);
  }
});

t.test('deploy: the Dockerfile copies only paths that exist and runs the built gfs', async (t) => {
  const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
  t.ok(copies.length > 0);
  for (const p of copies) t.ok(fs.existsSync(path.join(root, p)), `COPY source ${p} exists`);
  t.match(dockerfile, /ENTRYPOINT \["node", "\/app\/dist\/cli\/gfs\.js"\]/);
});
