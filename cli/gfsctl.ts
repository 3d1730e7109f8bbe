#!/usr/bin/env node
/**
 * `gfsctl`: the command-line client.
 *
 * Exit status, the same for every command: 0 on success; 1 when the command failed
 * (an error from the cluster or the local side, or fsck finding the cluster not
 * healthy), with one line on stderr naming the problem and nothing changed; 2 for a
 * usage error (unknown command or option, a missing argument, a value that is not a
 * number in range, a master address without a port), with one line and a hint, before
 * anything is sent.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GfsClient, readLocalFile, type AdminClient, type FileInfo } from '../src/client';
import { GfsError } from '../src/common/errors';
import { formatBytes, formatDuration, parseDecimal, parseDurationMs, parseInteger, parseSizeBytes } from '../src/common/units';
import { parseScopes, parseVisibility } from '../src/common/auth';
import { randomId } from '../src/common/ids';
import { limits } from '../src/common/limits';
import { sleep, systemClock } from '../src/common/clock';
import { FileState } from '../gen/gfs';
import { Progress } from './progress';
import { registerEventsCommand } from './events-command';
import { parseSizeAge, sizeAgeText } from './stream-options';
import { appendLines, tailLog } from './log-commands';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** A whole number in [min, max], or a usage error naming the range. */
function intOption(min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    try {
      return parseInteger(v, min, max);
    } catch {
      throw new InvalidArgumentError(`expected a whole number ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}`);
    }
  };
}

/** `--roll` / `--retention`: SIZE/AGE (stream-options.ts), or a usage error. */
function sizeAgeOption(flag: string): (v: string) => { bytes: number; ageMs: number } {
  return (v) => {
    try {
      return parseSizeAge(v, flag);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** A decimal number in (min, max], or a usage error naming the range. */
function numberOption(minExclusive: number, max: number): (v: string) => number {
  return (v) => {
    let n = NaN;
    try { n = parseDecimal(v, minExclusive, max); } catch { /* refused below, with gfsctl's wording */ }
    if (!(n > minExclusive)) throw new InvalidArgumentError(`expected a number above ${minExclusive} and at most ${max}`);
    return n;
  };
}

/**
 * `--masters`: every address needs host:port. grpc-js would silently take port 443 for
 * a bare host, so a missing port is refused with the documented default as the hint.
 */
function mastersOption(v: string): string {
  const addrs = v.split(',').map((a) => a.trim()).filter(Boolean);
  if (addrs.length === 0) throw new InvalidArgumentError('expected at least one master address host:port');
  for (const a of addrs) {
    const m = /^(\[[^\]]+\]|[^:\s[\]]+):(\d+)$/.exec(a);
    if (!m) throw new InvalidArgumentError(`'${a}' has no port; masters listen on ${limits.masterPortDefault} by default, e.g. ${a.replace(/:.*$/, '')}:${limits.masterPortDefault}`);
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new InvalidArgumentError(`port ${m[2]} in '${a}' is not 1..65535`);
  }
  return addrs.join(',');
}

const program = new Command('gfsctl')
  .description('gfs command-line client')
  .addOption(new Option('--masters <list>', 'comma-separated master addresses, each host:port').env('GFS_MASTERS')
    .default(`127.0.0.1:${limits.masterPortDefault}`).argParser(mastersOption))
  .addOption(new Option('--token <token>', 'access token').env('GFS_TOKEN'))
  .option('--json', 'machine-readable output')
  .option('--retries <n>', 'at most this many retries of a master call (default: retry until --deadline)', intOption(0))
  .option('--deadline <seconds>', 'give up on a master call after this long, following the leader and retrying meanwhile',
    numberOption(0, 24 * 3600), limits.clientCallDeadlineMs / 1000)
  .configureOutput({
    // Usage errors: one line and a hint, never the whole help.
    outputError: (msg, write) => {
      const text = msg.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()
        .replace(/^option '(\S+)[^']*' argument '(.*)' is invalid\. /s, "invalid $1 '$2': ")
        .replace(/^option '[^']*' value '(.*)' from env '(\w+)' is invalid\. /s, "invalid $2 '$1': ");
      write(`gfsctl: ${text}; see gfsctl --help\n`);
    },
  })
  .exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  });

interface Globals { masters: string; token?: string; json?: boolean; retries?: number; deadline: number }

function globals(): Globals { return program.opts<Globals>(); }

function client(): GfsClient {
  return new GfsClient(connectOptions());
}

/** --masters / GFS_MASTERS, --retries and --deadline, as every connection takes them. */
function connectOptions(): { masters: string[]; retries?: number; deadlineMs: number; token?: string } {
  const g = globals();
  return { masters: g.masters.split(','), retries: g.retries, deadlineMs: g.deadline * 1000, token: g.token || undefined };
}

/** Any failure: one line on stderr and the given exit code. */
function reportFailure(e: unknown, exitCode: number): void {
  const msg = e instanceof GfsError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  process.stderr.write(`gfsctl: ${msg}\n`);
  process.exitCode = exitCode;
}

/** Runs a command with a client, and turns every failure into one line and exit 1. */
function run(fn: (c: GfsClient) => Promise<void>): () => Promise<void> {
  return async () => {
    let c: GfsClient | undefined;
    try {
      c = client();
      await fn(c);
    } catch (e) {
      reportFailure(e, EXIT_FAILURE);
    } finally {
      await c?.close();
    }
  };
}

/** Lifecycle and admin calls (client.admin). */
function runAdmin(fn: (a: AdminClient) => Promise<void>): () => Promise<void> {
  return run((c) => fn(c.admin));
}

/**
 * A goal above the live chunkservers is accepted (nodes may join later) but said
 * plainly: until then every chunk of the file stays under-replicated.
 */
async function warnIfGoalAboveNodes(c: GfsClient, replication: number): Promise<void> {
  const { nodes } = await c.admin.nodes();
  const alive = nodes.filter((n) => n.state === 'alive').length;
  if (replication > alive) {
    process.stderr.write(`gfsctl: warning: replication ${replication} but only ${alive} chunkserver${alive === 1 ? ' is' : 's are'} alive; the file stays under-replicated (goal ${replication}, only ${alive} nodes) until more join\n`);
  }
}

function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/**
 * A file as JSON. Chunks only where the reply carries them (stat, put): a listing has
 * no chunk locations, and an empty list there would claim the file has none.
 */
function fileJson(f: FileInfo, withChunks = true): unknown {
  return {
    path: f.path, type: f.isDir ? 'dir' : 'file', size: f.size, mtime: new Date(f.mtimeMs).toISOString(),
    state: f.isDir ? undefined : stateText(f), log: f.log || undefined,
    replication: f.isDir ? undefined : f.replication, checksum: f.checksum || undefined, inode: f.isDir ? undefined : f.inode,
    chunks: f.isDir || !withChunks ? undefined : f.chunks.map((c) => ({
      handle: c.handle, version: c.version, offset: c.offset, length: c.length,
      replicas: c.replicas.map((r) => r.nodeId), addrs: c.replicas.map((r) => r.addr),
    })),
  };
}

/** sealed; writing (a put in progress); open (a log taking appends: its size is the committed length). */
function stateText(f: FileInfo): string {
  if (f.state === FileState.FILE_STATE_SEALED) return 'sealed';
  return f.log ? 'open' : 'writing';
}

program.command('append')
  .description('append each line of stdin (or of --records FILE, NDJSON) to the log REMOTE as one record, newline included')
  .argument('<remote>', 'remote log path')
  .option('--records <file>', 'NDJSON file: each line (a JSON value) is one record')
  .option('--create', 'create the log if it is missing')
  .action((remote: string, o: { records?: string; create?: boolean }) => run(async (c) => {
    const file = o.records;
    if (file !== undefined && !fs.existsSync(file)) throw new GfsError('NO_SUCH_FILE', `records file ${file} does not exist`);
    const openInput = () => (file === undefined ? process.stdin : fs.createReadStream(file));
    const offsets = await appendLines(c, remote, openInput, { create: o.create, ndjson: file !== undefined });
    if (globals().json) printJson({ path: remote, offsets });
  })());

program.command('tail')
  .description('print the end of a log (the last 10 lines by default); -f: then every record as it is committed, until the log is sealed')
  .argument('<remote>', 'remote log path')
  .option('-f, --follow', 'keep printing records as they are appended')
  .option('-n, --lines <n>', 'the last N lines', intOption(0))
  .option('--from <offset>', 'from this file offset instead', intOption(0))
  .action((remote: string, o: { follow?: boolean; lines?: number; from?: number }) => run(async (c) => {
    if (o.lines !== undefined && o.from !== undefined) throw new GfsError('INVALID_ARGUMENT', 'give -n or --from, not both');
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    process.once('SIGTERM', () => ac.abort());
    await tailLog(c, remote, process.stdout, { follow: o.follow, lines: o.lines ?? (o.from === undefined ? 10 : undefined), from: o.from, signal: ac.signal });
  })());

program.command('put')
  .description('upload a local file (or - for stdin) to REMOTE')
  .argument('<local>', 'local file, or - for stdin')
  .argument('<remote>', 'remote path /<namespace>/<name>')
  .option('-f, --force', 'overwrite an existing remote file')
  .option('--replication <n>', `replication factor for this file (1..${limits.replicationMax}; default: the master's)`, intOption(1, limits.replicationMax))
  .action((local: string, remote: string, o: { force?: boolean; replication?: number }) => run(async (c) => {
    let source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>;
    let total: number | undefined;
    if (local === '-') {
      source = process.stdin;
    } else {
      let st: fs.Stats;
      try {
        st = fs.statSync(local);
      } catch {
        throw new GfsError('NO_SUCH_FILE', `local file ${local} does not exist`);
      }
      if (!st.isFile()) throw new GfsError('INVALID_ARGUMENT', `local path ${local} is not a regular file`);
      total = st.size;
      source = readLocalFile(local);
    }
    if (o.replication !== undefined) await warnIfGoalAboveNodes(c, o.replication);
    const progress = new Progress(`put ${remote}`, total);
    const info = await c.put(source, remote, {
      force: o.force, replication: o.replication, onProgress: (n) => progress.add(n),
    });
    progress.finish();
    if (globals().json) printJson(fileJson(info));
  })());

program.command('get')
  .description('download REMOTE to a local file (default: its base name) or - for stdout')
  .argument('<remote>')
  .argument('[local]')
  .action((remote: string, local: string | undefined) => run(async (c) => {
    const info = await c.stat(remote);
    if (info.isDir) throw new GfsError('IS_A_DIRECTORY', `${remote} is a directory`);
    const progress = new Progress(`get ${remote}`, info.size);
    if (local === '-') {
      await c.get(remote, process.stdout, { onProgress: (n) => progress.add(n) });
      progress.finish();
      return;
    }
    const target = local ?? path.basename(info.path);
    // Write beside the final name and rename, so a failed download leaves no partial file.
    const tmp = `${target}.gfs-tmp-${randomId(4)}`;
    try {
      const out = fs.createWriteStream(tmp, { highWaterMark: 1024 * 1024 });
      await pipeline(c.createReadStream(remote, { onProgress: (n) => progress.add(n) }), out);
      fs.renameSync(tmp, target);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    progress.finish();
  })());

program.command('cat')
  .description('write REMOTE to stdout')
  .argument('<remote>')
  .action((remote: string) => run(async (c) => {
    await c.get(remote, process.stdout);
  })());

program.command('ls')
  .description('list a directory (or show a file)')
  .argument('[path]', 'remote path', '/')
  .option('-l, --long', 'size, mtime, state, replication')
  .option('-R, --recursive', 'list subdirectories too')
  .action((p: string, o: { long?: boolean; recursive?: boolean }) => run(async (c) => {
    const res = await c.list(p, { recursive: o.recursive });
    if (globals().json) return printJson(res.entries.map((e) => fileJson(e, false)));
    for (const e of res.entries) {
      if (!o.long) { process.stdout.write(`${e.path}${e.isDir ? '/' : ''}\n`); continue; }
      const kind = e.isDir ? 'd' : '-';
      const state = e.isDir ? '-' : stateText(e);
      process.stdout.write(`${kind} ${String(e.isDir ? '-' : e.replication).padStart(2)} ${String(e.size).padStart(14)} ${new Date(e.mtimeMs).toISOString()} ${state.padEnd(7)} ${e.path}${e.isDir ? '/' : ''}\n`);
    }
    if (res.truncated) process.stderr.write('gfsctl: listing truncated\n');
  })());

program.command('stat')
  .description('show a file: size, state, checksum, chunks and their replicas')
  .argument('<path>')
  .action((p: string) => run(async (c) => {
    const info = await c.stat(p);
    if (globals().json) return printJson(fileJson(info));
    if (info.isDir) { process.stdout.write(`${info.path}/ directory, mtime ${new Date(info.mtimeMs).toISOString()}\n`); return; }
    const sizeNote = info.log && info.state !== FileState.FILE_STATE_SEALED ? ' committed, still growing' : '';
    process.stdout.write(`${info.path}${info.log ? ' (log)' : ''}\n  size ${info.size} (${formatBytes(info.size)}${sizeNote})  state ${stateText(info)}  replication ${info.replication}\n  mtime ${new Date(info.mtimeMs).toISOString()}  checksum xxh64:${info.checksum}\n  chunks ${info.chunks.length}\n`);
    for (const ch of info.chunks) {
      process.stdout.write(`    #${ch.handle} v${ch.version} @${ch.offset} +${ch.length}  ${ch.replicas.length}/${ch.goal} replicas: ${ch.replicas.map((r) => `${r.nodeId}(${r.addr})`).join(' ')}\n`);
    }
  })());

program.command('rm')
  .description('move a file (or with -r a directory) to the trash')
  .argument('<path>')
  .option('-r, --recursive', 'remove a directory and everything below it')
  .action((p: string, o: { recursive?: boolean }) => run(async (c) => {
    try {
      await c.delete(p, { recursive: o.recursive });
    } catch (e) {
      if (e instanceof GfsError && e.code === 'DIRECTORY_NOT_EMPTY' && !o.recursive) {
        throw new GfsError(e.code, `${e.message}; use rm -r to move it and everything below it to the trash`);
      }
      throw e;
    }
  })());

program.command('mv')
  .description('rename a file or directory')
  .argument('<source>')
  .argument('<target>')
  .option('-f, --force', 'replace an existing target file')
  .action((s: string, t: string, o: { force?: boolean }) => run(async (c) => {
    await c.rename(s, t, { overwrite: o.force });
  })());

program.command('mkdir')
  .description('create a directory (and its parents)')
  .argument('<path>')
  .action((p: string) => run(async (c) => { await c.mkdir(p); })());

const stream = program.command('stream').description('log streams: directories whose active segment rolls at a size or an age, with retention');
const rollHelp = 'roll the active segment at SIZE and/or AGE, e.g. 64MiB/10m, 1GiB, 1h (none: never)';
const retentionHelp = 'drop sealed segments, oldest first, past AGE and/or while over SIZE, e.g. 7d/10GiB, 30d (none: keep)';

function printStream(f: FileInfo): void {
  if (globals().json) return printJson({ path: f.path, stream: f.stream });
  const p = f.stream;
  if (!p) { process.stdout.write(`${f.path} is not a stream\n`); return; }
  process.stdout.write(`${f.path}/ stream: roll ${sizeAgeText(p.rollBytes, p.rollAgeMs)}, retention ${sizeAgeText(p.retentionBytes, p.retentionAgeMs)}, replication ${p.replication}\n`);
}

stream.command('create')
  .description('create a stream directory; appends to it go to its active segment (gfsctl append PATH)')
  .argument('<path>')
  .option('--roll <size/age>', rollHelp, sizeAgeOption('--roll'))
  .option('--retention <age/size>', retentionHelp, sizeAgeOption('--retention'))
  .option('--replication <n>', `replication of its segments (1..${limits.replicationMax}; default: the master's)`, intOption(1, limits.replicationMax))
  .action((p: string, o: { roll?: { bytes: number; ageMs: number }; retention?: { bytes: number; ageMs: number }; replication?: number }) => runAdmin(async (a) => {
    printStream(await a.createStream(p, {
      rollBytes: o.roll?.bytes ?? 0, rollAgeMs: o.roll?.ageMs ?? 0,
      retentionBytes: o.retention?.bytes ?? 0, retentionAgeMs: o.retention?.ageMs ?? 0, replication: o.replication ?? 0,
    }));
  })());

stream.command('set')
  .description('change a stream\'s policy; a flag left out keeps its current rule')
  .argument('<path>')
  .option('--roll <size/age>', rollHelp, sizeAgeOption('--roll'))
  .option('--retention <age/size>', retentionHelp, sizeAgeOption('--retention'))
  .option('--replication <n>', 'replication of new segments', intOption(1, limits.replicationMax))
  .action((p: string, o: { roll?: { bytes: number; ageMs: number }; retention?: { bytes: number; ageMs: number }; replication?: number }) => run(async (c) => {
    const now = (await c.stat(p)).stream;
    if (!now) throw new GfsError('INVALID_ARGUMENT', `${p} is not a stream`);
    printStream(await c.admin.createStream(p, {
      rollBytes: o.roll ? o.roll.bytes : now.rollBytes, rollAgeMs: o.roll ? o.roll.ageMs : now.rollAgeMs,
      retentionBytes: o.retention ? o.retention.bytes : now.retentionBytes, retentionAgeMs: o.retention ? o.retention.ageMs : now.retentionAgeMs,
      replication: o.replication ?? now.replication,
    }, { update: true }));
  })());

stream.command('show')
  .description('a stream\'s policy')
  .argument('<path>')
  .action((p: string) => run(async (c) => printStream(await c.stat(p)))());

const trash = program.command('trash').description('deleted files, restorable until their trash period ends');
trash.command('ls')
  .description('what is in the trash: original path, deletion time, size, when it will be purged')
  .action(() => run(async (c) => {
    const { entries } = await c.trash();
    if (globals().json) return printJson(entries);
    process.stdout.write(`${'DELETED'.padEnd(25)}${'PURGED AFTER'.padEnd(25)}${'SIZE'.padStart(11)}${'INODE'.padStart(9)}  PATH\n`);
    const iso = (ms: number) => new Date(ms).toISOString();
    for (const e of entries) {
      process.stdout.write(`${iso(e.deletedAtMs).padEnd(25)}${iso(e.purgeAtMs).padEnd(25)}${formatBytes(e.size).padStart(11)}${String(e.inode).padStart(9)}  ${e.path}\n`);
    }
  })());

program.command('restore')
  .description('put a trashed file back at its original path (the newest trashed version unless --deleted-at or --inode picks one)')
  .argument('<path>', 'the path the file had when it was deleted')
  .option('--to <newpath>', 'restore it here instead (needed when a live file is at the original path)')
  .option('--deleted-at <ms>', 'the version deleted at this time (ms since the epoch, as trash ls --json shows)', intOption(1))
  .option('--inode <n>', 'the version with this inode (as trash ls shows)', intOption(1))
  .action((p: string, o: { to?: string; deletedAt?: number; inode?: number }) => run(async (c) => {
    const f = await c.restore(p, { to: o.to, deletedAtMs: o.deletedAt, inode: o.inode });
    if (globals().json) return printJson(fileJson(f));
    process.stdout.write(`restored ${f.path} (inode ${f.inode}, ${formatBytes(f.size)})\n`);
  })());

program.command('status')
  .description('cluster health: masters, nodes, files, chunks, replication')
  .action(() => run(async (c) => {
    const s = await c.admin.statusAll();
    if (globals().json) return printJson(s);
    for (const m of s.masters) {
      process.stdout.write(`master ${m.id} ${m.addr} ${m.role} epoch ${m.epoch} commit ${m.commitIndex} lag ${m.lag} pid ${m.pid}\n`);
    }
    process.stdout.write(`chunkservers ${s.nodesAlive} alive, ${s.nodesDead} dead; capacity ${formatBytes(s.capacityBytes)}, used ${formatBytes(s.usedBytes)}\n`);
    process.stdout.write(`files ${s.files}, chunks ${s.chunks}, under-replicated ${s.underReplicated}, missing ${s.missing}${s.safeMode ? ' (safe mode)' : ''}\n`);
    if (s.safeMode) process.stdout.write(`safe mode: ${s.safeModeReason || 'waiting for chunkserver reports'}; no repairs or deletes yet\n`);
    const r = s.repair;
    if (r) {
      const busy = r.queuedChunks + r.inflightChunks > 0;
      process.stdout.write(busy
        ? `repair: ${r.queuedChunks} chunks queued (${formatBytes(r.queuedBytes)}), ${r.inflightChunks} copying (${formatBytes(r.inflightBytes)}), ${formatBytes(r.bytesPerSec)}/s, ETA ${r.etaKnown && r.etaMs > 0 ? formatDuration(r.etaMs) : 'unknown'}; ${r.completedTotal} done, ${r.failedTotal} failed\n`
        : `repair: idle; ${r.completedTotal} clones done, ${r.failedTotal} failed; corrupt replicas ${r.corruptReplicas}, stale ${r.staleReplicas}, over-replicated chunks ${r.overReplicated}\n`);
      if (r.unrepairableChunks > 0) process.stdout.write(`cannot repair now: ${r.unrepairableReasons.join('; ')}\n`);
    }
    const b = s.balance;
    if (b) {
      const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
      process.stdout.write(`balance: fill ${pct(b.minFillRatio)}..${pct(b.maxFillRatio)} (mean ${pct(b.meanFillRatio)}, threshold ${pct(b.thresholdRatio)}${b.automatic ? '' : ', automatic off'}); ` +
        `${b.inflightMoves} moving, ${b.completedMoves} moved (${formatBytes(b.movedBytes)})${b.bytesToMove > 0 ? `, ${formatBytes(b.bytesToMove)} to move${b.etaMs ? `, ETA ${formatDuration(b.etaMs)}` : ''}` : ''}\n`);
    }
  })());

program.command('fsck')
  .description('check every chunk under PATH against its replication goal; exit 0 only when all are at their goal')
  .argument('[path]', 'a file or directory', '/')
  .action((p: string) => runAdmin(async (a) => {
    const r = await a.fsck(p);
    if (globals().json) printJson(r);
    else {
      for (const f of r.files) {
        process.stdout.write(`${f.path} (inode ${f.inode}, ${formatBytes(f.size)})\n`);
        for (const c of f.chunks) {
          const extra = [
            c.corruptNodes.length ? `corrupt on ${c.corruptNodes.join(',')}` : '',
            c.staleNodes.length ? `stale on ${c.staleNodes.join(',')}` : '',
            c.deadNodes.length ? `unavailable on ${c.deadNodes.join(',')}` : '',
            c.repairing ? 'repairing' : '',
            c.reason ? `cannot repair now: ${c.reason}` : '',
          ].filter(Boolean).join('; ');
          process.stdout.write(`  chunk #${c.index} handle ${c.handle} @${c.offset} +${c.length}: ${c.problem}, ${c.healthy}/${c.goal} healthy${c.healthyNodes.length ? ` (${c.healthyNodes.join(',')})` : ''}${extra ? `; ${extra}` : ''}\n`);
        }
      }
      process.stdout.write(`${r.filesChecked} files, ${r.chunksChecked} chunks checked: ${r.underReplicated} under-replicated, ${r.missing} missing, ${r.corrupt} with corrupt replicas${r.overReplicated ? `, ${r.overReplicated} over-replicated` : ''}${r.truncated ? ' (list truncated: run on a sub-path)' : ''}\n`);
      if (r.safeMode) process.stdout.write('note: the master is in safe mode; replicas not yet reported count as missing\n');
      process.stdout.write(r.healthy ? 'status: HEALTHY\n' : 'status: NOT HEALTHY\n');
    }
    if (!r.healthy) process.exitCode = 1;
  })());

program.command('gc')
  .description('garbage collection: what would be reclaimed and why (--dry-run), or run a pass now')
  .option('--dry-run', 'only report; change nothing')
  .action((o: { dryRun?: boolean }) => runAdmin(async (a) => {
    const r = await a.gc({ dryRun: o.dryRun });
    if (globals().json) return printJson(r);
    if (r.blockedReason) process.stdout.write(`gc is holding off: ${r.blockedReason}\n`);
    for (const i of r.items) {
      const what = i.path ? `${i.path} (inode ${i.inode})` : `chunk ${i.handle} on ${i.nodeId}`;
      process.stdout.write(`${(i.due ? 'due' : 'later').padEnd(6)}${i.kind.padEnd(16)}${formatBytes(i.bytes).padStart(11)}  ${what}: ${i.reason}\n`);
    }
    process.stdout.write(`${r.ran ? 'ran a pass; ' : ''}${r.items.length} items${r.truncated ? ' (truncated)' : ''}: ${formatBytes(r.dueBytes)} reclaimable at the next pass, ${formatBytes(r.waitingBytes)} later\n`);
  })());

program.command('balance')
  .description('move replicas from fuller to emptier nodes now (one round), or show the plan with --dry-run')
  .option('--dry-run', 'only show the plan')
  .option('--threshold <ratio>', 'fill difference from the mean that counts as unbalanced, above 0 and at most 1 (default: the master\'s)',
    numberOption(0, 1))
  .action((o: { dryRun?: boolean; threshold?: number }) => runAdmin(async (a) => {
    const r = await a.balance({ dryRun: o.dryRun, thresholdRatio: o.threshold ?? 0 });
    if (globals().json) return printJson(r);
    if (r.blockedReason) process.stdout.write(`balance is holding off: ${r.blockedReason}\n`);
    const p = r.progress!;
    process.stdout.write(`mean fill ${(p.meanFillRatio * 100).toFixed(1)}%\n`);
    for (const n of r.nodes) process.stdout.write(`  ${n.nodeId.padEnd(18)} ${(n.fillRatio * 100).toFixed(1).padStart(5)}%  ${n.role}\n`);
    for (const mv of r.planned) process.stdout.write(`${r.ran ? 'moving' : 'would move'} chunk ${mv.handle} (${formatBytes(mv.bytes)}) ${mv.sourceNodeId} -> ${mv.targetNodeId}\n`);
    process.stdout.write(`${r.planned.length} moves ${r.ran ? 'started' : 'planned'}; ${p.inflightMoves} in flight, ${p.completedMoves} done; ${formatBytes(p.bytesToMove)} above the threshold${p.etaMs ? `, ETA ${formatDuration(p.etaMs)}` : ''}\n`);
  })());

program.command('decommission')
  .description('drain a chunkserver: its chunks are copied elsewhere, then it is reported removable')
  .argument('<node>', 'node id, unique id prefix, or address')
  .option('--cancel', 'stop draining; the node takes new chunks again')
  .option('--wait', 'wait until the node is removable, showing progress')
  .action((node: string, o: { cancel?: boolean; wait?: boolean }) => runAdmin(async (a) => {
    let r = await a.decommission(node, { cancel: o.cancel });
    while (o.wait && !o.cancel && !r.removable) {
      if (process.stderr.isTTY) process.stderr.write(`\r${r.nodeId}: ${r.detail}\x1b[K`);
      await sleep(systemClock, limits.decommissionPollMs);
      r = await a.decommission(node, { cancel: false });
    }
    if (o.wait && process.stderr.isTTY) process.stderr.write('\n');
    if (globals().json) return printJson(r);
    process.stdout.write(`${r.nodeId}: ${r.state}; ${r.detail}\n`);
  })());

program.command('df')
  .description('used space split into live, trash, orphaned (in grace), stale and more, per node and in total')
  .action(() => runAdmin(async (a) => {
    const r = await a.df();
    if (globals().json) return printJson(r);
    const cols: [string, (x: typeof r) => number][] = [
      ['SIZE', (x) => x.capacityBytes], ['USED', (x) => x.usedBytes], ['FREE', (x) => x.freeBytes],
      ['GFS', (x) => x.gfsUsedBytes], ['LIVE', (x) => x.liveBytes], ['TRASH', (x) => x.trashBytes], ['ORPHANED', (x) => x.orphanBytes],
      ['STALE', (x) => x.staleBytes], ['CORRUPT', (x) => x.corruptBytes], ['EXTRA', (x) => x.overReplicatedBytes],
      ['WRITING', (x) => x.writingBytes], ['OTHER', (x) => x.otherBytes],
    ];
    process.stdout.write(`${'NODE'.padEnd(18)}${'STATE'.padEnd(7)}${cols.map(([h]) => h.padStart(11)).join('')}\n`);
    for (const n of r.nodes) {
      const asTotals = { ...r, ...n } as typeof r;
      process.stdout.write(`${n.nodeId.padEnd(18)}${n.state.padEnd(7)}${cols.map(([, f]) => formatBytes(f(asTotals)).padStart(11)).join('')}\n`);
    }
    process.stdout.write(`${'total'.padEnd(18)}${''.padEnd(7)}${cols.map(([, f]) => formatBytes(f(r)).padStart(11)).join('')}\n`);
    for (const note of r.sharedNotes) process.stdout.write(`note: ${note}\n`);
    if (r.retentionDueSegments > 0) process.stdout.write(`retention: ${formatBytes(r.retentionDueBytes)} of LIVE (${r.retentionDueSegments} sealed stream segments) dropped at the next stream tick\n`);
    process.stdout.write('USED = SIZE - FREE of the file system (anything on it); GFS = chunk files there; LIVE = replicas of files up to their goal; TRASH = deleted files (purged after the trash period); ORPHANED = no file references them (deleted after the orphan grace); STALE/CORRUPT = replaced replicas awaiting deletion; EXTRA = beyond the goal; OTHER = checksums and temporary files\n');
    if (r.safeMode) process.stdout.write('note: the master is in safe mode; nothing is being reclaimed yet\n');
  })());

program.command('nodes')
  .description('chunkservers: id, address, zone, tier, capacity, used, chunks, recent disk reads and writes per second, state')
  .action(() => run(async (c) => {
    const { nodes } = await c.admin.nodes();
    if (globals().json) return printJson(nodes);
    process.stdout.write(`${'ID'.padEnd(18)}${'ADDR'.padEnd(22)}${'ZONE'.padEnd(10)}${'TIER'.padEnd(6)}${'CAPACITY'.padStart(12)}${'USED'.padStart(12)}${'FREE'.padStart(12)}${'CHUNKS'.padStart(8)}${'CORRUPT'.padStart(8)}${'REPAIR'.padStart(8)}${'READ/S'.padStart(12)}${'WRITE/S'.padStart(12)}  STATE\n`);
    for (const n of nodes) {
      const repair = n.repairsIn + n.repairsOut > 0 ? `${n.repairsIn}/${n.repairsOut}` : '-';
      process.stdout.write(`${n.id.padEnd(18)}${n.addr.padEnd(22)}${n.zone.padEnd(10)}${n.tier.padEnd(6)}${formatBytes(n.capacityBytes).padStart(12)}${formatBytes(n.usedBytes).padStart(12)}${formatBytes(n.freeBytes).padStart(12)}${String(n.chunkCount).padStart(8)}${String(n.corruptCount).padStart(8)}${repair.padStart(8)}${formatBytes(n.readBytesPerSec).padStart(12)}${formatBytes(n.writeBytesPerSec).padStart(12)}  ${n.state}${n.drainingDetail ? ` (${n.drainingDetail})` : ''}\n`);
    }
  })());

// ---- tokens and namespaces (DESIGN §11)

/** A usage error unless `parse` accepts the value. */
function checked<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try { return parse(v); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
  };
}

const when = (ms: number): string => (ms === 0 ? 'never' : new Date(ms).toISOString());

const token = program.command('token').description('access tokens: scoped per namespace to read, write, delete, admin');
token.command('create')
  .description('create a token (at most what your own token has) and print it with its S3 key pair; the secret is shown only now')
  .requiredOption('--ns <list>', 'comma-separated namespaces, or * for all')
  .requiredOption('--scope <list>', 'comma-separated scopes: read, write, delete, admin (admin implies the others)', checked(parseScopes))
  .option('--expires <duration>', 'lifetime, e.g. 30d, 12h (default: never, or your own token\'s expiry)', checked(parseDurationMs))
  .option('--description <text>', 'free text shown by token ls')
  .action((o: { ns: string; scope: string[]; expires?: number; description?: string }) => runAdmin(async (a) => {
    const grants = o.ns.split(',').map((n) => n.trim()).filter(Boolean).map((namespace) => ({ namespace, scopes: o.scope }));
    const r = await a.createToken(grants, { expiresInMs: o.expires ?? 0, description: o.description });
    if (globals().json) return printJson(r);
    process.stdout.write(`token: ${r.token}\nid: ${r.id}\naccessKeyId: ${r.accessKeyId}\nsecretAccessKey: ${r.secretAccessKey}\nexpires: ${when(r.expiresAtMs)}\n`);
  })());
token.command('ls')
  .description('tokens you may manage: id, grants, expiry, state (never secrets)')
  .action(() => runAdmin(async (a) => {
    const { tokens } = await a.listTokens();
    if (globals().json) return printJson(tokens);
    process.stdout.write(`${'ID'.padEnd(18)}${'STATE'.padEnd(9)}${'EXPIRES'.padEnd(26)}${'ACCESS KEY'.padEnd(20)}GRANTS\n`);
    const now = Date.now();
    for (const t of tokens) {
      const state = t.revokedAtMs > 0 ? 'revoked' : t.expiresAtMs > 0 && t.expiresAtMs <= now ? 'expired' : 'live';
      const grants = t.grants.map((g) => `${g.namespace}:${g.scopes.join(',')}`).join(' ');
      process.stdout.write(`${t.id.padEnd(18)}${state.padEnd(9)}${when(t.expiresAtMs).padEnd(26)}${t.accessKeyId.padEnd(20)}${grants}${t.description ? `  (${t.description})` : ''}\n`);
    }
  })());
token.command('revoke <id>')
  .description('revoke a token: refused by the masters at once, by gateways within a few seconds')
  .action((id: string) => runAdmin(async (a) => {
    await a.revokeToken(id);
    if (!globals().json) process.stdout.write(`revoked ${id}\n`);
  })());

interface NsFlags { visibility?: string; quotaBytes?: number; quotaFiles?: number }
function nsFlags(cmd: Command): Command {
  return cmd
    .option('--visibility <v>', 'private (scoped tokens only), visible (listed to any token), public (anonymous GET and LIST)', checked(parseVisibility))
    .option('--quota-bytes <size>', 'byte quota, e.g. 10GiB (0: none)', checked(parseSizeBytes))
    .option('--quota-files <n>', 'file quota (0: none)', intOption(0));
}
function printNamespace(n: { name: string; visibility: string; quotaBytes: number; quotaFiles: number; usedBytes: number; usedFiles: number }): void {
  const q = (used: string, quota: number, fmt: (x: number) => string): string => (quota > 0 ? `${used}/${fmt(quota)}` : used);
  process.stdout.write(`${n.name.padEnd(24)}${n.visibility.padEnd(10)}${q(formatBytes(n.usedBytes), n.quotaBytes, formatBytes).padStart(22)}${q(String(n.usedFiles), n.quotaFiles, String).padStart(16)}\n`);
}
const ns = program.command('ns').description('namespaces: visibility and quotas');
nsFlags(ns.command('create <name>').description('create a namespace (private unless --visibility)'))
  .action((name: string, o: NsFlags) => runAdmin(async (a) => {
    const r = await a.setNamespace(name, { create: true, ...o });
    if (globals().json) return printJson(r);
    printNamespace(r);
  })());
nsFlags(ns.command('set <name>').description('change a namespace\'s visibility or quotas'))
  .action((name: string, o: NsFlags) => runAdmin(async (a) => {
    const r = await a.setNamespace(name, o);
    if (globals().json) return printJson(r);
    printNamespace(r);
  })());
ns.command('ls').description('namespaces you can see, with usage and quotas')
  .action(() => runAdmin(async (a) => {
    const { namespaces } = await a.listNamespaces();
    if (globals().json) return printJson(namespaces);
    process.stdout.write(`${'NAME'.padEnd(24)}${'VISIBILITY'.padEnd(10)}${'BYTES'.padStart(22)}${'FILES'.padStart(16)}\n`);
    for (const n of namespaces) printNamespace(n);
  })());

registerEventsCommand(program, { runAdmin, json: () => globals().json === true });

// `gfsctl cat big.log | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`gfsctl: ${e.message}\n`);
  process.exit(EXIT_FAILURE);
});
