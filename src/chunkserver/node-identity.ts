/**
 * A chunkserver's identity is a random id generated once and kept in its data
 * directory (DESIGN §6), never its address: a rescheduled pod with a new IP and the
 * same disk is the same node, and a fresh disk is a new node.
 *
 * Invariant: once `<data>/node-id` exists it is never rewritten.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { GfsError } from '../common/errors';
import { randomId } from '../common/ids';
import { errnoCode, fsyncDir } from './file-io';

export const nodeIdFileName = 'node-id';

const nodeIdRe = /^[0-9a-f]{16,64}$/;

/**
 * Returns the node id stored in `dataDir`, creating it on first use. The new id is
 * written beside its final name, fsynced, renamed and the directory fsynced, so a
 * crash leaves either no id or the whole one.
 */
export async function loadOrCreateNodeId(dataDir: string, newId: () => string = () => randomId()): Promise<string> {
  const file = path.join(dataDir, nodeIdFileName);
  const existing = await readNodeId(file);
  if (existing !== undefined) return existing;

  const id = newId();
  if (!nodeIdRe.test(id)) throw new Error(`generated node id "${id}" is not 16-64 lowercase hex digits`);
  await fs.mkdir(dataDir, { recursive: true });
  const tmp = `${file}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(`${id}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  await fsyncDir(dataDir);
  return id;
}

async function readNodeId(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new GfsError('IO_ERROR', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const id = text.trim();
  // Never silently replace a damaged id: that would turn this disk into a new node.
  if (!nodeIdRe.test(id)) throw new GfsError('CORRUPT', `${file} does not hold a node id (16-64 hex digits)`);
  return id;
}
