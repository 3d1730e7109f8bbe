/**
 * The Prometheus rules and the Grafana dashboard in deploy/ name only metrics and labels
 * the servers export (every `gfs_*` name is a literal in src/), the rules pass
 * `promtool check rules`, and their unit tests (deploy/prometheus/gfs-rules.test.yaml:
 * the alerts fire on those series and stay quiet on a healthy cluster) pass
 * `promtool test rules`.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const root = path.resolve(__dirname, '..', '..', '..');
const rules = path.join(root, 'deploy', 'prometheus', 'gfs-rules.yaml');
const rulesTest = path.join(root, 'deploy', 'prometheus', 'gfs-rules.test.yaml');
const dashboardFile = path.join(root, 'deploy', 'grafana', 'gfs.json');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []);
}
const source = sourceFiles(path.join(root, 'src')).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
/** Every metric name the servers register: string literals `'gfs_...'` in src. */
const exported = new Set([...source.matchAll(/'(gfs_[a-z0-9_]+)'/g)].map((m) => m[1]!));
const histograms = new Set([...source.matchAll(/new Histogram\(\{\s*name: '(gfs_[a-z0-9_]+)'/g)].map((m) => m[1]!));
/** Label names: the servers' labelNames, the `component` default label, and Prometheus' own. */
const labels = new Set(['le', 'instance', 'job', 'component',
  ...[...source.matchAll(/labelNames: \[([^\]]*)\]/g)].flatMap((m) => [...m[1]!.matchAll(/'([a-z_]+)'/g)].map((x) => x[1]!))]);

function metricsIn(text: string): string[] {
  return [...new Set([...text.matchAll(/\bgfs_[a-z0-9_]+/g)].map((m) => m[0]))];
}
function known(name: string): boolean {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return exported.has(name) || (base !== name && histograms.has(base));
}
function labelsIn(expr: string): string[] {
  const byClauses = [...expr.matchAll(/\b(?:by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
  const matchers = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]!));
  return [...byClauses, ...matchers];
}

t.test('monitoring: the source exports the metrics the alerts are about', async (t) => {
  t.ok(exported.size > 30, `${exported.size} gfs metrics found in src`);
  for (const name of ['gfs_master_chunks_under_replicated', 'gfs_master_nodes_dead', 'gfs_master_is_leader', 'gfs_master_epoch',
    'gfs_master_fill_cap_ratio', 'gfs_chunkserver_capacity_bytes', 'gfs_chunkserver_free_bytes']) t.ok(exported.has(name), name);
  t.ok(histograms.has('gfs_master_commit_seconds'));
});

t.test('monitoring: the alert rules pass promtool and their own unit tests', async (t) => {
  const check = spawnSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
  t.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`);
  const unit = spawnSync('promtool', ['test', 'rules', path.basename(rulesTest)], { cwd: path.dirname(rulesTest), encoding: 'utf8' });
  t.equal(unit.status, 0, `promtool test rules: ${unit.stdout}${unit.stderr}`);
  const text = fs.readFileSync(rules, 'utf8');
  for (const alert of ['GfsChunksUnderReplicated', 'GfsChunkserverDead', 'GfsLeaderFlapping', 'GfsNoLeader', 'GfsChunkserverPastFillCap']) {
    t.match(text, new RegExp(`alert: ${alert}\\b`), `rule ${alert}`);
    t.match(fs.readFileSync(rulesTest, 'utf8'), new RegExp(`alertname: ${alert}\\b`), `${alert} has a promtool unit test`);
  }
});

t.test('monitoring: rules and dashboard name only exported metrics and labels', async (t) => {
  const dashboard = JSON.parse(fs.readFileSync(dashboardFile, 'utf8'));
  const panels: any[] = dashboard.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]);
  const ids = panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const exprs: string[] = [
    ...panels.flatMap((p) => (p.targets ?? []).map((x: { expr: string }) => x.expr)),
    ...dashboard.annotations.list.map((a: { expr: string }) => a.expr),
    ...dashboard.templating.list.filter((v: any) => v.type === 'query').map((v: any) => v.query),
  ];
  for (const p of panels.filter((x) => x.type !== 'row')) t.ok(p.targets?.length && p.targets.every((x: { expr: string }) => x.expr), `panel "${p.title}" has queries`);
  const ruleExprs = [...fs.readFileSync(rules, 'utf8').matchAll(/expr: (>\n(?:\s{10,}.*\n)+|.*)/g)].map((m) => m[1]!);
  for (const [what, list] of [['dashboard', exprs], ['rules', ruleExprs]] as const) {
    const names = metricsIn(list.join('\n'));
    t.ok(names.length > 5, `${what} uses ${names.length} metrics`);
    for (const name of names) t.ok(known(name), `${what}: ${name} is exported by the servers`);
    for (const label of new Set(list.flatMap(labelsIn))) t.ok(labels.has(label), `${what}: label ${label} exists`);
  }
  const series = [...fs.readFileSync(rulesTest, 'utf8').matchAll(/series: '([^']+)'/g)].map((m) => m[1]!);
  for (const name of metricsIn(series.join('\n'))) t.ok(known(name), `rule tests: ${name} is exported by the servers`);
  for (const s of series) for (const label of [...s.matchAll(/([a-z_]+)="/g)].map((m) => m[1]!)) t.ok(labels.has(label), `rule tests: label ${label} exists`);
});
