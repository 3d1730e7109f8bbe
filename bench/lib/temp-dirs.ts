/** Temp dirs the run created; cleanup.ts removes them all at exit, even after an error. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const createdDirs = new Set<string>();

export function makeTempDir(purpose: string): string {
  const dir = mkdtempSync(join(tmpdir(), `gfs-bench-${purpose}-`));
  createdDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  createdDirs.delete(dir);
}

export function removeAllTempDirs(): void {
  for (const dir of [...createdDirs]) removeTempDir(dir);
}
