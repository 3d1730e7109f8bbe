/**
 * The dashboard's static files (index.html, dashboard.js, dashboard.css beside this
 * module; the build copies them next to the compiled one): plain files, no build step,
 * nothing fetched from outside the gateway.
 *
 * Invariants:
 * - Only the files named in ASSETS are ever served (no path from the URL reaches the
 *   file system).
 * - The page itself is open; the data it shows needs an admin token (rest/admin.ts).
 * - Every answer forbids framing, sniffing, referrers and any script, style or request
 *   that is not the gateway's own (the token lives in the page's sessionStorage).
 */
import fs from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import { GfsError } from '../../common/errors';

const ASSETS: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/ui/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

const SECURITY_HEADERS: http.OutgoingHttpHeaders = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export function isUiPath(pathname: string): boolean {
  return Object.hasOwn(ASSETS, pathname);
}

export class UiAssets {
  private readonly loaded = new Map<string, Buffer>();

  constructor(private readonly dir = __dirname) {}

  /** Answers GET/HEAD of one dashboard file. */
  serve(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
    const asset = ASSETS[pathname];
    if (asset === undefined) throw new GfsError('NO_SUCH_FILE', `no dashboard file ${pathname}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new GfsError('INVALID_ARGUMENT', `${req.method} is not allowed on ${pathname}`);
    const body = this.read(asset.file);
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private read(file: string): Buffer {
    let body = this.loaded.get(file);
    if (body === undefined) {
      try {
        body = fs.readFileSync(path.join(this.dir, file));
      } catch (e) {
        throw new GfsError('INTERNAL', `the dashboard file ${file} is missing from ${this.dir} (npm run build copies it there)`, { cause: e });
      }
      this.loaded.set(file, body);
    }
    return body;
  }
}
