/**
 * The part of kustomize that deploy/k8s uses, for offline tests (no kubectl on a fresh
 * machine): `resources` (files and folders with their own kustomization.yaml),
 * `namespace`, `images` and `patches` given by `path` as strategic merges matched by
 * kind and name (`$patch: delete` removes the object; lists of objects with a `name`
 * merge item by item (patched items first, as kustomize puts them), other lists are replaced, as for containers, env, ports, volumes).
 *
 * Invariant: a patch that matches no object, a resource listed twice, or a kustomization
 * field this does not implement is an error, never silently ignored.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

const handled = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'images', 'patches']);
const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass']);

export function readYamlDocs(file: string): any[] {
  return parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS();
  }).filter((d) => d !== null);
}

export function readKustomization(dir: string): any {
  const [k] = readYamlDocs(path.join(dir, 'kustomization.yaml'));
  assert.equal(k.kind, 'Kustomization', `${dir}/kustomization.yaml is a Kustomization`);
  for (const key of Object.keys(k)) assert.ok(handled.has(key), `${dir}/kustomization.yaml: field ${key} is not implemented by this resolver`);
  return k;
}

export const keyOf = (o: { kind: string; metadata: { name: string } }) => `${o.kind}/${o.metadata.name}`;

/** The objects `kustomize build dir` would print (in resource order, not kustomize's sort). */
export function kustomizeBuild(dir: string): K8sObject[] {
  const k = readKustomization(dir);
  let objects: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    const p = path.join(dir, r);
    objects.push(...(fs.statSync(p).isDirectory() ? kustomizeBuild(p) : readYamlDocs(p)));
  }
  const keys = objects.map(keyOf);
  assert.equal(new Set(keys).size, keys.length, `${dir}: an object is listed twice: ${keys}`);
  for (const entry of k.patches ?? []) {
    assert.ok(entry.path && !entry.target && !entry.patch, `${dir}: only patches by path are implemented`);
    for (const patch of readYamlDocs(path.join(dir, entry.path))) {
      const i = objects.findIndex((o) => keyOf(o) === keyOf(patch));
      assert.ok(i >= 0, `${dir}/${entry.path}: patch for ${keyOf(patch)} matches no object`);
      if (patch.$patch === 'delete') objects.splice(i, 1);
      else objects[i] = strategicMerge(objects[i], patch);
    }
  }
  if (k.namespace) objects = objects.map((o) => (clusterScoped.has(o.kind) ? o : { ...o, metadata: { ...o.metadata, namespace: k.namespace } }));
  for (const image of k.images ?? []) {
    for (const c of objects.flatMap(containersOf)) {
      if (c.image.split(/[:@]/)[0] !== image.name) continue;
      const name = image.newName ?? image.name;
      c.image = image.digest ? `${name}@${image.digest}` : `${name}:${image.newTag ?? c.image.split(':')[1] ?? 'latest'}`;
    }
  }
  return objects;
}

/** Containers (init containers too) of a workload's pod template, or none. */
export function containersOf(o: K8sObject): any[] {
  const spec = o.spec?.template?.spec;
  return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
}

export function strategicMerge(base: any, patch: any): any {
  if (Array.isArray(patch)) {
    const named = (xs: unknown[]) => xs.every((x) => x !== null && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string');
    if (!Array.isArray(base) || !named(base) || !named(patch)) return patch;
    // As kustomize orders them: the patch's items first (an env var patched in comes
    // before the base's, so it cannot use their $(VARS)), then the base's others.
    const merged = patch.map((item: any) => {
      const b = base.find((x: any) => x.name === item.name);
      return b ? strategicMerge(b, item) : item;
    });
    return [...merged, ...base.filter((b: any) => !patch.some((item: any) => item.name === b.name))];
  }
  if (patch === null || typeof patch !== 'object' || base === null || typeof base !== 'object' || Array.isArray(base)) return patch;
  const out = { ...base };
  for (const [key, value] of Object.entries(patch)) out[key] = key in base ? strategicMerge(base[key], value) : value;
  return out;
}
