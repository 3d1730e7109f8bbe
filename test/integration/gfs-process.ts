/**
 * A `gfs` server or `gfs dev` run as a real process by a test: its ready line, its
 * stderr lines, its exit, and a teardown that stops it (SIGTERM, so `gfs dev` stops its
 * children too; SIGKILL if it hangs).
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { GFS } from './helpers';
import type { Endpoints } from '../../src/dev/cluster';

export interface GfsProcess {
  child: ChildProcess;
  /** The first stdout line (the ready line); rejects if the process exits first. */
  ready: Promise<string>;
  exited: Promise<number | null>;
  stderrLines: string[];
}

export function spawnGfs(t: { teardown(fn: () => unknown): void }, args: string[]): GfsProcess {
  const child = spawn(process.execPath, [GFS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stderrLines: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (l) => stderrLines.push(l));
  const ready = new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    void exited.then((code) => reject(new Error(`gfs ${args[0]} exited with ${code} before its ready line: ${stderrLines.join(' | ')}`)));
  });
  ready.catch(() => undefined);
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  });
  return { child, ready, exited, stderrLines };
}

export function readEndpoints(dataDir: string): Endpoints {
  return JSON.parse(fs.readFileSync(path.join(dataDir, 'endpoints.json'), 'utf8')) as Endpoints;
}

export function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}
