#!/usr/bin/env node
/**
 * `gfs`: the server processes. Every flag can also come from GFS_<FLAG> in the
 * environment (flags win). Each server prints one JSON line on stdout when it is ready
 * and logs JSON lines with pino on stderr.
 */
import '../src/common/threadpool';
import { Command, InvalidArgumentError, Option } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger } from '../src/common/log';
import { durationText, parseDecimal, parseDurationMs, parseInteger, parseSizeBytes, sizeText } from '../src/common/units';
import { initChecksums } from '../src/common/checksum';
import { limits } from '../src/common/limits';
import { GfsError } from '../src/common/errors';
import { Master } from '../src/master/master';
import { Chunkserver } from '../src/chunkserver/chunkserver';
import { Gateway } from '../src/gateway/gateway';
import { loadCredentials } from '../src/gateway/credentials';
import { startDevCluster } from '../src/dev/cluster';
import { lockDataDir } from '../src/common/data-dir-lock';
import { checkClusterName } from '../src/events';

/**
 * A flag that also reads GFS_<FLAG>. With `parse`, its text (from the command line or the
 * environment) is checked and converted when read, so a bad value ends the process with
 * one line naming the flag, and no NaN reaches a server. A default is given already
 * parsed, with the text --help shows beside it.
 */
/** The cluster secret in a file (one line, at least 16 characters). */
function readClusterSecret(file: string): string {
  const secret = fs.readFileSync(file, 'utf8').trim();
  if (secret.length < 16) throw new GfsError('INVALID_ARGUMENT', `cluster secret in ${file} is shorter than 16 characters`);
  return secret;
}

function opt<T = string>(flags: string, description: string, parse?: (text: string) => T, defaultValue?: T, defaultText?: string): Option {
  const long = /--([a-z0-9-]+)/.exec(flags)![1]!;
  const o = new Option(flags, description).env(`GFS_${long.toUpperCase().replace(/-/g, '_')}`);
  if (parse) {
    o.argParser((text: string) => {
      try {
        return parse(text);
      } catch (e) {
        throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
      }
    });
  }
  return defaultValue === undefined ? o : o.default(defaultValue, defaultText);
}

/** A duration flag, at least `minMs`; its default shown as a duration. */
function durationOpt(flags: string, description: string, defaultMs?: number, minMs = 0): Option {
  return opt(flags, description, (text) => atLeast(parseDurationMs(text), minMs, text, durationText(minMs)), defaultMs, defaultMs === undefined ? undefined : durationText(defaultMs));
}

/** A rate flag: a size per second, `200MiB/s` (the `/s` may be left out), more than zero. */
function rateOpt(flags: string, description: string, defaultBytesPerSec?: number): Option {
  return opt(flags, description, parseRate, defaultBytesPerSec, defaultBytesPerSec === undefined ? undefined : `${sizeText(defaultBytesPerSec)}/s`);
}

function sizeOpt(flags: string, description: string, defaultBytes?: number): Option {
  return opt(flags, description, (text) => atLeast(parseSizeBytes(text), 1, text, '1 byte'), defaultBytes, defaultBytes === undefined ? undefined : sizeText(defaultBytes));
}

function integerOpt(flags: string, description: string, min: number, max: number, defaultValue?: number): Option {
  return opt(flags, description, (text) => parseInteger(text, min, max), defaultValue);
}

function decimalOpt(flags: string, description: string, min: number, max: number, defaultValue?: number): Option {
  return opt(flags, description, (text) => parseDecimal(text, min, max), defaultValue);
}

function atLeast(value: number, min: number, text: string, minText: string): number {
  if (value < min) throw new GfsError('INVALID_ARGUMENT', `"${text}" is less than ${minText}`);
  return value;
}

function parseRate(text: string): number {
  const bytes = parseSizeBytes(String(text).replace(/\/s$/i, ''));
  if (bytes <= 0) throw new GfsError('INVALID_ARGUMENT', `rate "${text}" must be positive`);
  return bytes;
}

/** `host:port` with a port from 0 (any free one) to 65535. */
function parseAddress(text: string): string {
  const m = /^(.+):(\d+)$/.exec(text);
  if (!m || Number(m[2]) > 65_535) throw new GfsError('INVALID_ARGUMENT', `"${text}" is not host:port`);
  return text;
}

/**
 * The admin address when --admin is not given: 127.0.0.1 at the listen port plus
 * `offset`, the layout gfs dev uses, so every server on one host gets its own (port 0,
 * any free port, stays 0).
 */
function defaultAdmin(listen: string, offset: number): string {
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  if (port === 0) return '127.0.0.1:0';
  if (port + offset > 65_535) throw new GfsError('INVALID_ARGUMENT', `no default admin port for listen port ${port} (${port}+${offset} > 65535); pass --admin`);
  return `127.0.0.1:${port + offset}`;
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

/** The S3 key pair from --s3-access-key/--s3-secret-key or the --s3-credentials file. */
function s3Credentials(o: { s3?: string; s3Credentials?: string; s3AccessKey?: string; s3SecretKey?: string; credentials?: string }): { accessKeyId: string; secretAccessKey: string } | undefined {
  if (o.s3AccessKey !== undefined || o.s3SecretKey !== undefined) {
    if (!o.s3AccessKey || !o.s3SecretKey) throw new GfsError('INVALID_ARGUMENT', '--s3-access-key and --s3-secret-key go together');
    return { accessKeyId: o.s3AccessKey, secretAccessKey: o.s3SecretKey };
  }
  if (o.s3Credentials === undefined) {
    // With --credentials the S3 keys are the master's tokens' (docs/AUTH.md); static keys are optional then.
    if (o.s3 !== undefined && o.credentials === undefined) throw new GfsError('INVALID_ARGUMENT', '--s3 needs --credentials (the master\'s tokens), --s3-credentials FILE or --s3-access-key/--s3-secret-key');
    return undefined;
  }
  let c: { accessKeyId?: unknown; secretAccessKey?: unknown };
  try {
    c = JSON.parse(fs.readFileSync(o.s3Credentials, 'utf8')) as typeof c;
  } catch (e) {
    throw new GfsError('INVALID_ARGUMENT', `cannot read S3 credentials from ${o.s3Credentials}: ${(e as Error).message}`);
  }
  if (typeof c.accessKeyId !== 'string' || typeof c.secretAccessKey !== 'string' || c.accessKeyId === '' || c.secretAccessKey === '') {
    throw new GfsError('INVALID_ARGUMENT', `${o.s3Credentials} needs string fields accessKeyId and secretAccessKey`);
  }
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
}

const program = new Command('gfs').description('gfs servers: master, chunkserver, gateway, dev cluster').showHelpAfterError('(gfs <command> --help lists the options)');

const NATS_HELP = 'NATS server URL(s) for cluster events, e.g. nats://127.0.0.1:4222 (events are hints: NATS being down changes nothing else; see docs/EVENTS.md)';
const clusterHelp = 'cluster name, the NATS subject token (the masters\' --cluster)';
const positive = 1; // ms: a period or timeout of zero makes no sense
const adminHelp = (offset: number) => `admin HTTP address (/metrics, /healthz, /readyz) (default: 127.0.0.1 at the --listen port + ${offset}; any free port if that is 0)`;

program.command('master')
  .description('run a master: standalone leader, or a member of a group elected through etcd')
  .addOption(opt('--id <id>', 'master id', undefined, 'm1'))
  .addOption(opt('--peers <list>', 'the master group as id=host:port,... (this master included); needs --etcd', parsePeers))
  .addOption(opt('--etcd <urls>', 'etcd endpoints for the leader election, comma-separated'))
  .addOption(durationOpt('--election-ttl <duration>', 'election lease TTL: a dead leader is replaced within about this long', limits.electionTtlMs, limits.electionTtlMinMs))
  .addOption(opt('--cluster <name>', 'cluster name: election prefix in etcd and NATS subject token (gfs.<cluster>.events.<kind>)', undefined, 'default'))
  .addOption(opt('--nats <url>', NATS_HELP))
  .addOption(integerOpt('--events-history <n>', 'recent cluster events kept for gfsctl events --since', 1, 10_000_000, limits.eventsHistoryMax))
  .addOption(integerOpt('--checkpoint-every <n>', 'checkpoint the metadata after this many log entries', 1, 1e9, limits.checkpointEveryRecords))
  .addOption(sizeOpt('--wal-segment-size <size>', 'WAL segment size', limits.walSegmentBytes))
  .addOption(opt('--data <dir>', 'data directory (WAL and checkpoints)', undefined, './gfs-data/master'))
  .addOption(opt('--listen <host:port>', 'gRPC address to bind', parseAddress, `127.0.0.1:${limits.masterPortDefault}`))
  .addOption(opt('--advertise <host:port>', 'address others dial (default: the bound one)', parseAddress))
  .addOption(opt('--admin <host:port>', adminHelp(limits.masterAdminPortOffset), parseAddress))
  .addOption(durationOpt('--dead-after <duration>', 'declare a silent chunkserver dead after', limits.deadAfterMs, positive))
  .addOption(integerOpt('--replication <n>', 'default replication factor', 1, limits.replicationMax, limits.replicationDefault))
  .addOption(durationOpt('--safe-mode-wait <duration>', 'no healing or deletes for at least this long after start', limits.safeModeMinMs))
  .addOption(decimalOpt('--safe-mode-fraction <f>', '...and until this fraction of chunks has a reported replica (at most --dead-after)', 0, 1, limits.safeModeChunkFraction))
  .addOption(durationOpt('--trash-period <duration>', 'deleted files stay restorable this long, then are purged', limits.trashPeriodMs))
  .addOption(durationOpt('--orphan-grace <duration>', 'an unreferenced replica is deleted only after this long', limits.orphanGraceMs))
  .addOption(durationOpt('--pending-timeout <duration>', 'a write whose writer is silent this long is aborted', limits.pendingFileTimeoutMs))
  .addOption(rateOpt('--repair-bandwidth <rate>', 'cluster-wide re-replication bandwidth, e.g. 512MiB/s', limits.repairBytesPerSec))
  .addOption(integerOpt('--repair-concurrency <n>', 'clones running at once in the cluster', 1, 1e6, limits.repairClonesMax))
  .addOption(decimalOpt('--balance-threshold <ratio>', 'rebalance nodes whose fill is this far above the mean (0 = only on gfsctl balance)', 0, 1, limits.balanceThresholdRatio))
  .addOption(durationOpt('--balance-interval <duration>', 'automatic rebalance rounds this often', limits.balanceIntervalMs, positive))
  .addOption(decimalOpt('--fill-cap <ratio>', 'never fill a node past this fraction of its capacity', 0.01, 1, limits.fillCapRatio))
  .addOption(integerOpt('--lease-ms <ms>', 'record append: a primary\'s lease in ms, renewed by heartbeats; a dead primary blocks its log at most this long', 1, 3_600_000, limits.appendLeaseMs))
  .addOption(durationOpt('--stream-tick <duration>', 'streams: rolls and retention are checked this often (data outlives retention by at most a roll plus this)', limits.streamTickMs, positive))
  .addOption(new Option('--auth <mode>', 'token checks: auto (once a token exists), on (always), off (never)').choices(['auto', 'on', 'off']).default('auto').env('GFS_AUTH'))
  .addOption(opt('--bootstrap-credentials <file>', 'on an empty metadata, the first leader creates an admin token and writes it here (mode 0600)'))
  .addOption(opt('--cluster-secret-file <file>', 'chunkserver heartbeats must carry the secret in this file (the chunkservers get the same file)', readClusterSecret))
  .addOption(opt('--log-level <level>', 'pino log level', undefined, 'info'))
  .action(async (o) => {
    try {
      lockDataDir(o.data); // before anything in the dir is opened; held until exit
      const log = createLogger('master', o.logLevel);
      const master = new Master({
        id: o.id, dataDir: path.resolve(o.data), listen: o.listen, advertise: o.advertise,
        adminListen: o.admin ?? defaultAdmin(o.listen, limits.masterAdminPortOffset),
        peers: o.peers, etcd: o.etcd ? String(o.etcd).split(',').filter(Boolean) : undefined,
        electionTtlMs: o.electionTtl, cluster: o.cluster,
        checkpointEveryRecords: o.checkpointEvery, walSegmentBytes: o.walSegmentSize,
        deadAfterMs: o.deadAfter, replicationDefault: o.replication, log,
        safeModeMinMs: o.safeModeWait, safeModeFraction: o.safeModeFraction,
        trashPeriodMs: o.trashPeriod, orphanGraceMs: o.orphanGrace,
        pendingTimeoutMs: o.pendingTimeout, repairBytesPerSec: o.repairBandwidth,
        repairClonesMax: o.repairConcurrency, balanceThresholdRatio: o.balanceThreshold,
        balanceIntervalMs: o.balanceInterval,
        fillCapRatio: o.fillCap, leaseMs: o.leaseMs, nats: o.nats, eventsHistoryMax: o.eventsHistory, streamTickMs: o.streamTick,
        auth: o.auth, bootstrapCredentials: o.bootstrapCredentials ? path.resolve(o.bootstrapCredentials) : undefined,
        clusterSecret: o.clusterSecretFile,
      });
      await master.start();
      onSignals(() => master.stop());
      ready({ role: 'master', id: o.id, addr: master.addr, admin: master.adminAddr });
    } catch (e) { fail(e); }
  });

program.command('chunkserver')
  .description('run a chunkserver')
  .addOption(opt('--data <dir>', 'data directory (chunks, index, node id)', undefined, './gfs-data/chunkserver'))
  .addOption(opt('--listen <host:port>', 'data-plane address to bind', parseAddress, `127.0.0.1:${limits.chunkserverPortDefault}`))
  .addOption(opt('--advertise <host:port>', 'address others dial (default: the bound one)', parseAddress))
  .addOption(opt('--admin <host:port>', adminHelp(limits.chunkserverAdminPortOffset), parseAddress))
  .addOption(opt('--masters <list>', 'comma-separated master addresses', undefined, `127.0.0.1:${limits.masterPortDefault}`))
  .addOption(opt('--tier <tier>', 'storage tier label', undefined, 'hot'))
  // Empty reads as "default": on Kubernetes GFS_ZONE comes from a pod label that older
  // clusters leave unset (deploy/k8s/base/chunkserver.yaml).
  .addOption(opt('--zone <zone>', 'failure-domain label (empty: default)', (text) => text || 'default', 'default'))
  .addOption(durationOpt('--heartbeat-interval <duration>', 'heartbeat period', limits.heartbeatIntervalMs, positive))
  .addOption(sizeOpt('--capacity <size>', 'report this capacity instead of the disk\'s (e.g. 10GiB)'))
  .addOption(durationOpt('--scrub-interval <duration>', 'the scrubber re-verifies every chunk once per this period', limits.scrubIntervalMs, positive))
  .addOption(rateOpt('--scrub-rate <rate>', 'the scrubber never reads faster than this', limits.scrubBytesPerSec))
  .addOption(rateOpt('--replicate-rate <rate>', 're-replication copies into this node at most this fast', limits.replicateBytesPerSec))
  .addOption(rateOpt('--replicate-rate-busy <rate>', '...and at most this fast, in and out, while the node serves clients', limits.replicateBytesPerSecBusy))
  .addOption(opt('--cluster-secret-file <file>', 'the masters\' cluster secret, sent with every heartbeat', readClusterSecret))
  .addOption(sizeOpt('--append-chunk-size <size>', 'record-append chunks end at this size (for tests; the master must agree)', limits.chunkBytesMax))
  .addOption(opt('--nats <url>', NATS_HELP))
  .addOption(opt('--cluster <name>', clusterHelp, undefined, 'default'))
  .addOption(opt('--log-level <level>', 'pino log level', undefined, 'info'))
  .action(async (o) => {
    try {
      lockDataDir(o.data); // before anything in the dir is opened; held until exit
      await initChecksums();
      const log = createLogger('chunkserver', o.logLevel);
      const cs = new Chunkserver({
        dataDir: path.resolve(o.data), listen: o.listen, advertise: o.advertise,
        adminListen: o.admin ?? defaultAdmin(o.listen, limits.chunkserverAdminPortOffset),
        masters: String(o.masters).split(',').filter(Boolean), tier: o.tier, zone: o.zone,
        heartbeatIntervalMs: o.heartbeatInterval, log, capacityBytes: o.capacity,
        scrubIntervalMs: o.scrubInterval, scrubBytesPerSec: o.scrubRate,
        replicateBytesPerSec: o.replicateRate, replicateBytesPerSecBusy: o.replicateRateBusy,
        appendChunkBytes: o.appendChunkSize, clusterSecret: o.clusterSecretFile,
        nats: o.nats, cluster: checkClusterName(o.cluster),
      });
      await cs.start();
      onSignals(() => cs.stop());
      ready({ role: 'chunkserver', nodeId: cs.nodeId, addr: cs.dataAddr, admin: cs.adminAddr });
    } catch (e) { fail(e); }
  });

program.command('gateway')
  .description('run the HTTP gateway')
  .addOption(opt('--masters <list>', 'comma-separated master addresses', undefined, `127.0.0.1:${limits.masterPortDefault}`))
  .addOption(opt('--rest <host:port>', 'REST API address', parseAddress, `127.0.0.1:${limits.restPortDefault}`))
  .addOption(opt('--nats <url>', NATS_HELP))
  .addOption(opt('--cluster <name>', clusterHelp, undefined, 'default'))
  .addOption(opt('--credentials <file>', 'the gateway\'s own admin token, JSON {"token","accessKeyId","secretAccessKey"} (gfs master --bootstrap-credentials writes one; gfs dev uses DATA/credentials.json); without it the cluster must have no token yet'))
  .addOption(opt('--audit-log <file>', 'append one JSON line per request (token id, action, path, status) to this file'))
  .addOption(integerOpt('--token-rate <n>', 'requests per second per token (and per anonymous address); past it: 429 / S3 SlowDown', 1, 1e9, limits.gatewayTokenRatePerSec))
  .addOption(opt('--s3 <host:port>', `S3 API address (e.g. 127.0.0.1:${limits.s3PortDefault}); no S3 listener without it`, parseAddress))
  .addOption(opt('--s3-credentials <file>', 'JSON file with the S3 {accessKeyId, secretAccessKey} (static keys besides the master\'s tokens; gfs dev --no-auth writes DATA/credentials.json)'))
  .addOption(opt('--s3-access-key <id>', 'S3 access key id (instead of --s3-credentials)'))
  .addOption(opt('--s3-secret-key <secret>', 'S3 secret access key (with --s3-access-key)'))
  .addOption(durationOpt('--s3-upload-expiry <duration>', 'a multipart upload never completed is aborted this long after it started', limits.s3UploadExpiryMs, 1000))
  .addOption(opt('--log-level <level>', 'pino log level', undefined, 'info'))
  .action(async (o) => {
    try {
      await initChecksums();
      const log = createLogger('gateway', o.logLevel);
      const s3Keys = s3Credentials(o);
      const gw = new Gateway({
        masters: String(o.masters).split(',').filter(Boolean), restListen: o.rest,
        credentials: o.credentials ? loadCredentials(o.credentials) : undefined, auditLog: o.auditLog, tokenRatePerSec: o.tokenRate, log,
        nats: o.nats, cluster: checkClusterName(o.cluster),
        s3Listen: o.s3, s3UploadExpiryMs: o.s3UploadExpiry, s3LookupSecret: (id) => (s3Keys !== undefined && id === s3Keys.accessKeyId ? s3Keys.secretAccessKey : undefined),
      });
      await gw.start();
      onSignals(() => gw.stop());
      ready({ role: 'gateway', addr: gw.restAddr, admin: gw.restAddr.replace(/^http:\/\//, ''), ...(gw.s3Addr ? { s3: gw.s3Addr } : {}) });
    } catch (e) { fail(e); }
  });

program.command('dev')
  .description('run a whole cluster on this machine: 1 master, N chunkservers, the gateway')
  .addOption(opt('--data <dir>', 'data directory', undefined, './gfs-data'))
  .addOption(integerOpt('--base-port <n>', `master port; its admin at +${limits.masterAdminPortOffset}, chunkservers at +101.. (admin +201..), REST at +${limits.devRestPortOffset}, S3 at +${limits.devS3PortOffset} (0 = random ports)`, 0, 65_535 - limits.devS3PortOffset, limits.masterPortDefault))
  .addOption(integerOpt('--chunkservers <n>', 'number of chunkserver processes', 1, limits.devChunkserversMax, limits.replicationDefault))
  .addOption(durationOpt('--dead-after <duration>', 'declare a silent chunkserver dead after', limits.deadAfterMs, positive))
  .addOption(durationOpt('--heartbeat-interval <duration>', 'chunkserver heartbeat period', limits.heartbeatIntervalMs, positive))
  .addOption(durationOpt('--scrub-interval <duration>', `chunkservers re-verify every chunk once per this period (default ${durationText(limits.scrubIntervalMs)})`, undefined, positive))
  .addOption(rateOpt('--scrub-rate <rate>', `scrubber read rate cap per chunkserver (default ${sizeText(limits.scrubBytesPerSec)}/s)`))
  .addOption(rateOpt('--replicate-rate <rate>', `re-replication copy rate per chunkserver (default ${sizeText(limits.replicateBytesPerSec)}/s)`))
  .addOption(durationOpt('--trash-period <duration>', `deleted files are purged after this (default ${durationText(limits.trashPeriodMs)})`))
  .addOption(durationOpt('--orphan-grace <duration>', `unreferenced replicas are deleted after this (default ${durationText(limits.orphanGraceMs)})`))
  .addOption(durationOpt('--pending-timeout <duration>', `writes whose writer is silent this long are aborted (default ${durationText(limits.pendingFileTimeoutMs)})`))
  .addOption(durationOpt('--safe-mode-wait <duration>', `no healing or deletes this long after start (default ${durationText(limits.safeModeMinMs)})`))
  .addOption(rateOpt('--repair-bandwidth <rate>', `cluster-wide re-replication bandwidth (default ${sizeText(limits.repairBytesPerSec)}/s)`))
  .addOption(opt('--log-level <level>', 'log level of the servers (logs in DATA/logs/)', undefined, 'info'))
  .addOption(opt('--nats <url>', `${NATS_HELP}; every process of the cluster publishes there`))
  .addOption(new Option('--no-restart', 'leave a child that dies dead (default: restart it with backoff)'))
  .addOption(new Option('--no-auth', 'no tokens: an open cluster (default: the master creates an admin token in DATA/credentials.json)'))
  .action(async (o) => {
    try {
      const dataDir = path.resolve(o.data);
      const cluster = await startDevCluster({
        dataDir, basePort: o.basePort, chunkservers: o.chunkservers,
        deadAfterMs: o.deadAfter, heartbeatIntervalMs: o.heartbeatInterval, logLevel: o.logLevel,
        scrubIntervalMs: o.scrubInterval, scrubBytesPerSec: o.scrubRate, replicateBytesPerSec: o.replicateRate,
        trashPeriodMs: o.trashPeriod, orphanGraceMs: o.orphanGrace,
        pendingTimeoutMs: o.pendingTimeout, safeModeMinMs: o.safeModeWait,
        repairBytesPerSec: o.repairBandwidth, nats: o.nats,
        restart: o.restart, auth: o.auth, report: (line) => process.stderr.write(`${line}\n`),
      });
      const file = await cluster.writeEndpoints();
      onSignals(() => cluster.stop());
      const ep = cluster.endpoints();
      process.stdout.write(`gfs dev ready: masters=${ep.masters.join(',')} rest=${ep.rest} ui=${ep.ui} s3=${ep.s3} chunkservers=${ep.chunkservers.map((c) => c.addr).join(',')} metrics=http://${ep.admin.master[0]}/metrics${ep.nats ? ` nats=${ep.nats} events=gfs.${ep.cluster}.events.>` : ''} endpoints=${file}${cluster.credentials ? ` credentials=${cluster.credentialsFile}` : ''}; next: export GFS_MASTERS=${ep.masters.join(',')}${cluster.credentials ? ` GFS_TOKEN=$(node -p "require('${cluster.credentialsFile}').token")` : ''} and run gfsctl status\n`);
    } catch (e) { fail(e); }
  });

program.parseAsync(process.argv).catch(fail);
