/**
 * Reads a local file for upload through one reused buffer: put() copies every chunk it
 * is given into its frames before asking for the next one, so a fresh buffer per read
 * (what fs.createReadStream does) would only feed the garbage collector.
 *
 * Invariant: each piece yielded is a view of that one buffer, valid only until the next
 * piece is asked for; the file is closed however the iteration ends.
 */
import fs from 'node:fs/promises';
import { limits } from '../common/limits';

export async function* readLocalFile(path: string, bufferBytes: number = limits.readPieceBytes): AsyncGenerator<Buffer> {
  const fh = await fs.open(path, 'r');
  const buf = Buffer.allocUnsafe(bufferBytes);
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
