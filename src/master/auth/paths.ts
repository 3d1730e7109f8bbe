/** The namespace a path is in: its first component (DESIGN §3); undefined for the root or a bad path. */
import { normalizePath } from '../../common/paths';

export function namespaceOfPath(path: string): string | undefined {
  let p: string;
  try {
    p = normalizePath(path);
  } catch {
    return undefined;
  }
  const first = p.split('/')[1];
  return first === undefined || first === '' ? undefined : first;
}
