/**
 * Namespaces over REST: a namespace is a top-level directory `/ns` (DESIGN §3).
 * `PUT /v1/namespaces/{ns}` creates it (201, or 200 when it exists: PUT is
 * idempotent), `GET` describes it, `DELETE` removes it (DIRECTORY_NOT_EMPTY unless
 * `?recursive`), `GET /v1/namespaces` lists them.
 */
import type http from 'node:http';
import { GfsError } from '../../common/errors';
import { limits } from '../../common/limits';
import type { FileInfo, NamespaceInfo } from '../../client';
import type { RestContext } from './context';
import { namespacePath, sendJson } from './http-util';

function nsJson(info: FileInfo, settings?: NamespaceInfo): Record<string, unknown> {
  return {
    name: info.path.slice(1), mtimeMs: info.mtimeMs,
    ...(settings ? { visibility: settings.visibility, quotaBytes: settings.quotaBytes, quotaFiles: settings.quotaFiles } : {}),
  };
}

async function statNamespace(ctx: RestContext, path: string): Promise<FileInfo | undefined> {
  try {
    const info = await ctx.client.stat(path);
    if (!info.isDir) throw new GfsError('NOT_A_DIRECTORY', `"${path}" is a file, not a namespace`);
    return info;
  } catch (e) {
    if (e instanceof GfsError && e.code === 'NO_SUCH_FILE') return undefined;
    throw e;
  }
}

export async function namespaceRoute(ctx: RestContext, req: http.IncomingMessage, res: http.ServerResponse, ns: string, query: URLSearchParams): Promise<void> {
  const path = namespacePath(ns);
  if (req.method === 'PUT') {
    const existing = await statNamespace(ctx, path);
    const visibility = query.get('visibility') ?? undefined;
    if (existing && visibility === undefined) return sendJson(res, 200, nsJson(existing));
    // Created (or changed) by the master, with its settings (?visibility=private|visible|public).
    const settings = await ctx.client.admin.setNamespace(ns, { create: !existing, visibility });
    return sendJson(res, existing ? 200 : 201, nsJson(await ctx.client.stat(path), settings));
  }
  if (req.method === 'GET' || req.method === 'HEAD') {
    const info = await statNamespace(ctx, path);
    if (!info) throw new GfsError('NO_SUCH_FILE', `namespace "${ns}" does not exist`);
    return sendJson(res, 200, nsJson(info));
  }
  if (req.method === 'DELETE') {
    if (!(await statNamespace(ctx, path))) throw new GfsError('NO_SUCH_FILE', `namespace "${ns}" does not exist`);
    await ctx.client.delete(path, { recursive: query.has('recursive') });
    res.writeHead(204);
    res.end();
    return;
  }
  throw new GfsError('INVALID_ARGUMENT', `${req.method} is not a namespace method (PUT, GET, DELETE)`);
}

/** Every namespace, one page (there are few: they are made by hand). */
export async function listNamespaces(ctx: RestContext, res: http.ServerResponse, visible: (ns: string) => boolean): Promise<void> {
  const { entries, truncated } = await ctx.client.list('/', { limit: limits.restListLimitMax });
  sendJson(res, 200, { namespaces: entries.filter((e) => e.isDir && visible(e.path.slice(1))).map((e) => nsJson(e)), truncated });
}
