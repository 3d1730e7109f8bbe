import { randomBytes } from 'node:crypto';

/** A random id for nodes, clients and requests: 16 hex chars is plenty to never collide here. */
export function randomId(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
}
