/**
 * REST errors: `{error: {code, message}}` with the HTTP status of the code's row in
 * src/common/errors.ts (the same stable codes as gRPC and S3), and the code again in
 * the `x-gfs-error-code` header (HEAD answers have no body).
 *
 * Invariant: an error never leaves a half-read request body on a kept-alive
 * connection: such a connection is closed after the answer, so a client that sent
 * a large body is not drained (nor can smuggle a second request into it).
 */
import type http from 'node:http';
import { ERROR_TABLE, GfsError } from '../../common/errors';
import { sendJson } from './http-util';

/** Any thrown value as a GfsError (a non-GfsError is a bug or a transport failure: INTERNAL). */
export function asGfsError(e: unknown): GfsError {
  if (e instanceof GfsError) return e;
  return new GfsError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}

/**
 * Answers an error, or, when the answer has already begun (a streamed body), cuts the
 * connection: the client then sees a short body, never a wrong one. Returns the status.
 */
export function sendError(req: http.IncomingMessage, res: http.ServerResponse, e: unknown, headers: http.OutgoingHttpHeaders = {}): number {
  const err = asGfsError(e);
  const status = ERROR_TABLE[err.code].http;
  if (res.headersSent) {
    res.destroy(err);
    return status;
  }
  if (res.destroyed || res.writableEnded) return status; // nobody to tell
  const extra: http.OutgoingHttpHeaders = { ...headers };
  if (!req.complete) extra.connection = 'close';
  if (req.method === 'HEAD') {
    res.writeHead(status, { 'x-gfs-error-code': err.code, ...extra });
    res.end();
  } else {
    sendJson(res, status, { error: { code: err.code, message: err.message } }, { 'x-gfs-error-code': err.code, ...extra });
  }
  return status;
}
