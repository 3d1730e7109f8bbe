#!/usr/bin/env node
/**
 * `gfs`: the server processes. Every flag can also come from GFS_<FLAG> in the
 * environment (flags win). Each server prints one JSON line on stdout when it is ready
 * and logs JSON lines with pino on stderr.
 */
import '../src/common/threadpool';
import { Command, Option } from 'commander';
import path from 'node:path';
import { createLogger } from '../src/common/log';
import { parseDurationMs, parseSizeBytes } from '../src/common/units';
import { initChecksums } from '../src/common/checksum';
import { limits } from '../src/common/limits';
import { GfsError } from '../src/common/errors';
import { Master } from '../src/master/master';
import { Chunkserver } from '../src/chunkserver/chunkserver';
import { Gateway } from '../src/gateway/gateway';
import { startDevCluster } from '../src/dev/cluster';
import { lockDataDir } from '../src/common/data-dir-lock';

function opt(flags: string, description: string, defaultValue?: string): Option {
  const long = /--([a-z0-9-]+)/.exec(flags)![1]!;
  const o = new Option(flags, description).env(`GFS_${long.toUpperCase().replace(/-/g, '_')}`);
  return defaultValue === undefined ? o : o.default(defaultValue);
}

/** A rate on the command line: a size per second, `200MiB/s` (the `/s` may be left out). */
function parseRate(text: string): number {
  const bytes = parseSizeBytes(String(text).replace(/\/s$/i, ''));
  if (bytes <= 0) throw new GfsError('INVALID_ARGUMENT', `rate "${text}" must be positive`);
  return bytes;
}

function optionalMs(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDurationMs(text);
}

/** `m1=10.0.0.1:7000,m2=...` → id → address. */
function parsePeers(text: string): Map<string, string> {
  const peers = new Map<string, string>();
  for (const item of text.split(',').filter(Boolean)) {
    const [id, addr] = item.split('=');
    if (!id || !addr || !addr.includes(':')) throw new GfsError('INVALID_ARGUMENT', `bad --peers entry "${item}" (expected id=host:port)`);
    peers.set(id, addr);
  }
  return peers;
}

function ready(info: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, ...info }) + '\n');
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    stop().then(() => process.exit(0), (e: Error) => { console.error(`gfs: error while stopping after ${signal}: ${e.message}`); process.exit(1); });
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

function fail(e: unknown): never {
  const msg = e instanceof GfsError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  process.stderr.write(`gfs: ${msg}\n`);
  process.exit(1);
}

const program = new Command('gfs').description('gfs servers: master, chunkserver, gateway, dev cluster').showHelpAfterError();

program.command('master')
  .description('run a master: standalone leader, or a member of a group elected through etcd')
  .addOption(opt('--id <id>', 'master id', 'm1'))
  .addOption(opt('--peers <list>', 'the master group as id=host:port,... (this master included); needs --etcd'))
  .addOption(opt('--etcd <urls>', 'etcd endpoints for the leader election, comma-separated'))
  .addOption(opt('--election-ttl <duration>', 'election lease TTL: a dead leader is replaced within about this long', `${limits.electionTtlMs / 1000}s`))
  .addOption(opt('--cluster <name>', 'election prefix in etcd, one per gfs cluster', 'default'))
  .addOption(opt('--checkpoint-every <n>', 'checkpoint the metadata after this many log entries', String(limits.checkpointEveryRecords)))
  .addOption(opt('--wal-segment-size <size>', 'WAL segment size', '64MiB'))
  .addOption(opt('--data <dir>', 'data directory (WAL and checkpoints)', './gfs-data/master'))
  .addOption(opt('--listen <host:port>', 'gRPC address to bind', '127.0.0.1:7000'))
  .addOption(opt('--advertise <host:port>', 'address others dial (default: the bound one)'))
  .addOption(opt('--admin <host:port>', 'admin HTTP address (/metrics, /healthz, /readyz)', '127.0.0.1:7080'))
  .addOption(opt('--dead-after <duration>', 'declare a silent chunkserver dead after', '30s'))
  .addOption(opt('--replication <n>', 'default replication factor', String(limits.replicationDefault)))
  .addOption(opt('--safe-mode-wait <duration>', 'no healing or deletes for at least this long after start', `${limits.safeModeMinMs / 1000}s`))
  .addOption(opt('--safe-mode-fraction <f>', '...and until this fraction of chunks has a reported replica (at most --dead-after)', String(limits.safeModeChunkFraction)))
  .addOption(opt('--trash-period <duration>', 'deleted files stay restorable this long, then are purged', '24h'))
  .addOption(opt('--orphan-grace <duration>', 'an unreferenced replica is deleted only after this long', '1h'))
  .addOption(opt('--pending-timeout <duration>', 'a write whose writer is silent this long is aborted', '1h'))
  .addOption(opt('--repair-bandwidth <rate>', 'cluster-wide re-replication bandwidth, e.g. 512MiB/s', '512MiB/s'))
  .addOption(opt('--repair-concurrency <n>', 'clones running at once in the cluster', String(limits.repairClonesMax)))
  .addOption(opt('--balance-threshold <ratio>', 'rebalance nodes whose fill is this far above the mean (0 = only on gfsctl balance)', String(limits.balanceThresholdRatio)))
  .addOption(opt('--balance-interval <duration>', 'automatic rebalance rounds this often', `${limits.balanceIntervalMs / 1000}s`))
  .addOption(opt('--fill-cap <ratio>', 'never fill a node past this fraction of its capacity', String(limits.fillCapRatio)))
  .addOption(opt('--log-level <level>', 'pino log level', 'info'))
  .action(async (o) => {
    try {
      lockDataDir(o.data); // before anything in the dir is opened; held until exit
      const log = createLogger('master', o.logLevel);
      const master = new Master({
        id: o.id, dataDir: path.resolve(o.data), listen: o.listen, advertise: o.advertise, adminListen: o.admin,
        peers: o.peers ? parsePeers(o.peers) : undefined, etcd: o.etcd ? String(o.etcd).split(',').filter(Boolean) : undefined,
        electionTtlMs: parseDurationMs(o.electionTtl), cluster: o.cluster,
        checkpointEveryRecords: Number(o.checkpointEvery), walSegmentBytes: parseSizeBytes(o.walSegmentSize),
        deadAfterMs: parseDurationMs(o.deadAfter), replicationDefault: Number(o.replication), log,
        safeModeMinMs: parseDurationMs(o.safeModeWait), safeModeFraction: Number(o.safeModeFraction),
        trashPeriodMs: parseDurationMs(o.trashPeriod), orphanGraceMs: parseDurationMs(o.orphanGrace),
        pendingTimeoutMs: parseDurationMs(o.pendingTimeout), repairBytesPerSec: parseRate(o.repairBandwidth),
        repairClonesMax: Number(o.repairConcurrency), balanceThresholdRatio: Number(o.balanceThreshold),
        balanceIntervalMs: parseDurationMs(o.balanceInterval),
        fillCapRatio: Number(o.fillCap),
      });
      await master.start();
      onSignals(() => master.stop());
      ready({ role: 'master', id: o.id, addr: master.addr, admin: master.adminAddr });
    } catch (e) { fail(e); }
  });

program.command('chunkserver')
  .description('run a chunkserver')
  .addOption(opt('--data <dir>', 'data directory (chunks, index, node id)', './gfs-data/chunkserver'))
  .addOption(opt('--listen <host:port>', 'data-plane address to bind', '127.0.0.1:7101'))
  .addOption(opt('--advertise <host:port>', 'address others dial (default: the bound one)'))
  .addOption(opt('--admin <host:port>', 'admin HTTP address', '127.0.0.1:7201'))
  .addOption(opt('--masters <list>', 'comma-separated master addresses', '127.0.0.1:7000'))
  .addOption(opt('--tier <tier>', 'storage tier label', 'hot'))
  .addOption(opt('--zone <zone>', 'failure-domain label', 'default'))
  .addOption(opt('--heartbeat-interval <duration>', 'heartbeat period', '1s'))
  .addOption(opt('--capacity <size>', 'report this capacity instead of the disk\'s (e.g. 10GiB)'))
  .addOption(opt('--scrub-interval <duration>', 'the scrubber re-verifies every chunk once per this period', '7d'))
  .addOption(opt('--scrub-rate <rate>', 'the scrubber never reads faster than this', '64MiB/s'))
  .addOption(opt('--replicate-rate <rate>', 're-replication copies into this node at most this fast', '128MiB/s'))
  .addOption(opt('--replicate-rate-busy <rate>', '...and at most this fast, in and out, while the node serves clients', '16MiB/s'))
  .addOption(opt('--log-level <level>', 'pino log level', 'info'))
  .action(async (o) => {
    try {
      lockDataDir(o.data); // before anything in the dir is opened; held until exit
      await initChecksums();
      const log = createLogger('chunkserver', o.logLevel);
      const cs = new Chunkserver({
        dataDir: path.resolve(o.data), listen: o.listen, advertise: o.advertise, adminListen: o.admin,
        masters: String(o.masters).split(',').filter(Boolean), tier: o.tier, zone: o.zone,
        heartbeatIntervalMs: parseDurationMs(o.heartbeatInterval), log,
        capacityBytes: o.capacity ? parseSizeBytes(o.capacity) : undefined,
        scrubIntervalMs: parseDurationMs(o.scrubInterval), scrubBytesPerSec: parseRate(o.scrubRate),
        replicateBytesPerSec: parseRate(o.replicateRate), replicateBytesPerSecBusy: parseRate(o.replicateRateBusy),
      });
      await cs.start();
      onSignals(() => cs.stop());
      ready({ role: 'chunkserver', nodeId: cs.nodeId, addr: cs.dataAddr, admin: cs.adminAddr });
    } catch (e) { fail(e); }
  });

program.command('gateway')
  .description('run the HTTP gateway')
  .addOption(opt('--masters <list>', 'comma-separated master addresses', '127.0.0.1:7000'))
  .addOption(opt('--rest <host:port>', 'REST API address', '127.0.0.1:8080'))
  .addOption(opt('--log-level <level>', 'pino log level', 'info'))
  .action(async (o) => {
    try {
      await initChecksums();
      const log = createLogger('gateway', o.logLevel);
      const gw = new Gateway({ masters: String(o.masters).split(',').filter(Boolean), restListen: o.rest, log });
      await gw.start();
      onSignals(() => gw.stop());
      ready({ role: 'gateway', addr: gw.restAddr, admin: gw.restAddr.replace(/^http:\/\//, '') });
    } catch (e) { fail(e); }
  });

program.command('dev')
  .description('run a whole cluster on this machine: 1 master, N chunkservers, the gateway')
  .addOption(opt('--data <dir>', 'data directory', './gfs-data'))
  .addOption(opt('--base-port <n>', 'master port; chunkservers at +101.., REST at +1080 (0 = random ports)', '7000'))
  .addOption(opt('--chunkservers <n>', 'number of chunkserver processes', '3'))
  .addOption(opt('--dead-after <duration>', 'declare a silent chunkserver dead after', '30s'))
  .addOption(opt('--heartbeat-interval <duration>', 'chunkserver heartbeat period', '1s'))
  .addOption(opt('--scrub-interval <duration>', 'chunkservers re-verify every chunk once per this period (default 7d)'))
  .addOption(opt('--scrub-rate <rate>', 'scrubber read rate cap per chunkserver (default 64MiB/s)'))
  .addOption(opt('--replicate-rate <rate>', 're-replication copy rate per chunkserver (default 128MiB/s)'))
  .addOption(opt('--trash-period <duration>', 'deleted files are purged after this (default 24h)'))
  .addOption(opt('--orphan-grace <duration>', 'unreferenced replicas are deleted after this (default 1h)'))
  .addOption(opt('--pending-timeout <duration>', 'writes whose writer is silent this long are aborted (default 1h)'))
  .addOption(opt('--safe-mode-wait <duration>', 'no healing or deletes this long after start (default 5s)'))
  .addOption(opt('--repair-bandwidth <rate>', 'cluster-wide re-replication bandwidth (default 512MiB/s)'))
  .addOption(opt('--log-level <level>', 'log level of the servers (logs in DATA/logs/)', 'info'))
  .addOption(new Option('--no-restart', 'leave a child that dies dead (default: restart it with backoff)'))
  .action(async (o) => {
    try {
      const dataDir = path.resolve(o.data);
      const cluster = await startDevCluster({
        dataDir, basePort: Number(o.basePort), chunkservers: Number(o.chunkservers),
        deadAfterMs: parseDurationMs(o.deadAfter), heartbeatIntervalMs: parseDurationMs(o.heartbeatInterval), logLevel: o.logLevel,
        scrubIntervalMs: optionalMs(o.scrubInterval), scrubBytesPerSec: o.scrubRate ? parseRate(o.scrubRate) : undefined,
        replicateBytesPerSec: o.replicateRate ? parseRate(o.replicateRate) : undefined,
        trashPeriodMs: optionalMs(o.trashPeriod), orphanGraceMs: optionalMs(o.orphanGrace),
        pendingTimeoutMs: optionalMs(o.pendingTimeout), safeModeMinMs: optionalMs(o.safeModeWait),
        repairBytesPerSec: o.repairBandwidth ? parseRate(o.repairBandwidth) : undefined,
        restart: o.restart, report: (line) => process.stderr.write(`${line}\n`),
      });
      const file = await cluster.writeEndpoints();
      onSignals(() => cluster.stop());
      const ep = cluster.endpoints();
      process.stdout.write(`gfs dev ready: masters=${ep.masters.join(',')} rest=${ep.rest} chunkservers=${ep.chunkservers.map((c) => c.addr).join(',')} metrics=http://${ep.admin.master[0]}/metrics endpoints=${file}\n`);
    } catch (e) { fail(e); }
  });

program.parseAsync(process.argv).catch(fail);
