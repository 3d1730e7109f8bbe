/**
 * The rows of the report. Each gfs figure names the baseline it is divided by; the
 * ratio is what compares across machines, the absolute value only on this one.
 * Targets are information, never a pass/fail of the run.
 */
import { formatSize } from './lib/units';
import type { BenchResults } from './results';

export interface Measure {
  value: number;
  unit: string;
}

export interface Figure extends Measure {
  name: string;
  /** Printed after the value: the same figure another way, or what qualifies it. */
  detail?: string;
  baseline?: Measure & { name: string };
  /** value / baseline.value */
  ratio?: number;
  target?: { text: string; met: boolean };
}

const putRatioTarget = 0.85;
const getRatioTarget = 0.8;
const createsPerSecTarget = 2000;
const cpuSecPerGiBTarget = 4.5;
const rereplicationRatioTarget = 0.5;
const foregroundDuringHealingRatioTarget = 0.7;

export function buildFigures(results: BenchResults): Figure[] {
  return [...baselineFigures(results), ...gfsFigures(results), ...appendFigures(results), ...healFigures(results), ...scrubFigures(results)];
}

/**
 * Record append: appends/s and ack latency per record size, appender count and load,
 * each beside one local file with one fdatasync per record (the same record size).
 */
function appendFigures({ append, rawRecordSync }: BenchResults): Figure[] {
  const figures: Figure[] = [];
  for (const b of rawRecordSync ?? []) {
    figures.push({
      name: `baseline: ${b.recordBytes} B write+fdatasync per record`, value: b.recordsPerSec, unit: 'records/s',
      detail: `p50 ${b.p50Ms.toFixed(2)} / p99 ${b.p99Ms.toFixed(2)} / p999 ${b.p999Ms.toFixed(2)} ms`,
    });
  }
  if (!append) return figures;
  for (const r of append.runs) {
    const b = rawRecordSync?.find((x) => x.recordBytes === r.recordBytes);
    const baseline = b && { name: 'fdatasync per record', value: b.recordsPerSec, unit: 'records/s' };
    const load = r.load === 'peak' ? 'peak' : `${Math.round(r.load * 100)} % of peak`;
    const figure = compared(`append ${r.recordBytes} B x${r.appenders} appender${r.appenders > 1 ? 's' : ''}, ${load}`,
      { value: r.appendsPerSec, unit: 'appends/s' }, baseline, () => undefined);
    const vsBaseline = b ? ` (baseline p99 ${b.p99Ms.toFixed(2)})` : '';
    figures.push({ ...figure, detail: `ack p50 ${r.p50Ms.toFixed(1)} / p99 ${r.p99Ms.toFixed(1)} / p999 ${r.p999Ms.toFixed(1)} ms${vsBaseline}${r.failed ? `, ${r.failed} failed` : ''}` });
  }
  const f = append.follow;
  figures.push({ name: 'follow: ack -> delivery, p50', value: f.ackToDeliveryP50Ms, unit: 'ms', detail: `p99 ${f.ackToDeliveryP99Ms.toFixed(1)} ms, ${f.records} records` });
  figures.push({ name: 'follow: append issued -> delivery, p50', value: f.sendToDeliveryP50Ms, unit: 'ms', detail: `p99 ${f.sendToDeliveryP99Ms.toFixed(1)} ms` });
  return figures;
}

function baselineFigures({ rawChain, rawRead, rawFsync, rawCopy }: BenchResults): Figure[] {
  const figures: Figure[] = [];
  if (rawChain) {
    figures.push({ name: 'baseline: raw chain write RF=3', value: rawChain.mibPerSec, unit: 'MiB/s' });
    figures.push({ name: 'baseline: raw chain CPU (4 procs)', value: rawChain.cpuSecPerGiB, unit: 'CPU-s/GiB' });
  }
  if (rawRead) {
    figures.push({ name: `baseline: raw read, ${rawRead.cache} cache`, value: rawRead.mibPerSec, unit: 'MiB/s' });
  }
  if (rawFsync) {
    figures.push({ name: 'baseline: group commit 100 B x16', value: rawFsync.groupCommitRecordsPerSec, unit: 'records/s' });
    figures.push({ name: 'baseline: 4 KiB write+fdatasync', value: rawFsync.plainSyncsPerSec, unit: 'syncs/s' });
  }
  if (rawCopy) {
    figures.push({ name: `baseline: raw copy on one disk, ${rawCopy.cache} cache`, value: rawCopy.mibPerSec, unit: 'MiB/s' });
  }
  return figures;
}

function gfsFigures({ sizeBytes, rawChain, rawRead, rawFsync, put, get, creates, meta, failover }: BenchResults): Figure[] {
  const size = formatSize(sizeBytes);
  const figures: Figure[] = [];
  const chainSpeed = rawChain && { name: 'raw chain', value: rawChain.mibPerSec, unit: 'MiB/s' };
  const chainCpu = rawChain && { name: 'raw chain', value: rawChain.cpuSecPerGiB, unit: 'CPU-s/GiB' };
  if (put) {
    figures.push(compared(`put ${size} RF=3`, { value: put.mibPerSec, unit: 'MiB/s' }, chainSpeed, ratioAtLeast(putRatioTarget)));
    figures.push(compared(
      'put CPU, client + servers',
      { value: put.cpuSecPerGiB, unit: 'CPU-s/GiB' },
      chainCpu,
      (figure) => ({ text: `<= ${cpuSecPerGiBTarget}`, met: figure.value <= cpuSecPerGiBTarget }),
    ));
  }
  if (get) {
    const readSpeed = rawRead && { name: `raw read (${rawRead.cache})`, value: rawRead.mibPerSec, unit: 'MiB/s' };
    figures.push(compared(`get ${size}, ${get.cache} cache`, { value: get.mibPerSec, unit: 'MiB/s' }, readSpeed, ratioAtLeast(getRatioTarget)));
  }
  if (creates) {
    const commitRate = rawFsync && { name: 'group commit', value: rawFsync.groupCommitRecordsPerSec, unit: 'records/s' };
    figures.push(compared(
      `4 KiB creates, 16 in flight`,
      { value: creates.createsPerSec, unit: 'creates/s' },
      commitRate,
      (figure) => ({ text: `>= ${createsPerSecTarget.toLocaleString('en-US')}/s`, met: figure.value >= createsPerSecTarget }),
    ));
  }
  for (const m of meta ?? []) {
    const commitRate = rawFsync && { name: 'group commit', value: rawFsync.groupCommitRecordsPerSec, unit: 'records/s' };
    const target = m.clients === 16 ? (m.masters === 1 ? 10_000 : 5_000) : undefined;
    figures.push(compared(
      `metadata creates, ${m.masters} master${m.masters > 1 ? 's' : ''}, ${m.clients} client${m.clients > 1 ? 's' : ''}`,
      { value: m.createsPerSec, unit: 'creates/s' },
      commitRate,
      (figure) => (target === undefined ? undefined : { text: `>= ${target.toLocaleString('en-US')}/s`, met: figure.value >= target }),
    ));
  }
  if (failover) {
    figures.push({ name: `failover, median of ${failover.kills} kills`, value: failover.medianMs, unit: 'ms', target: { text: '<= 3,000 ms', met: failover.medianMs <= 3000 } });
    const worstLimit = failover.electionTtlMs + 2000;
    figures.push({ name: `failover, worst of ${failover.kills}`, value: failover.worstMs, unit: 'ms', target: { text: `<= TTL + 2 s (${worstLimit} ms)`, met: failover.worstMs <= worstLimit } });
  }
  return figures;
}

/**
 * Healing after a kill -9: times (with the part after --dead-after spelled out, as the
 * goal is stated), the re-replication rate against a raw copy, and the foreground
 * ops during healing against the same ops on the idle cluster.
 */
function healFigures({ heal, rawCopy }: BenchResults): Figure[] {
  if (!heal) return [];
  const { kill, foreground, deadAfterMs } = heal;
  const seconds = (ms: number): Measure => ({ value: ms / 1000, unit: 's' });
  // Below dead-after is possible: the master counts from the victim's last heartbeat.
  const afterDeadAfter = (ms: number): string =>
    `dead-after ${ms >= deadAfterMs ? '+' : '-'} ${(Math.abs(ms - deadAfterMs) / 1000).toFixed(1)} s`;
  const nodes = `${heal.chunkservers} chunkservers`;
  const figures: Figure[] = [
    { name: `heal: kill -9 -> declared dead, ${nodes}`, ...seconds(kill.declaredDeadMs), detail: afterDeadAfter(kill.declaredDeadMs) },
    {
      name: `heal: kill -9 -> full health, ${formatSize(kill.lostBytes)} lost`,
      ...seconds(kill.fullHealthMs),
      detail: afterDeadAfter(kill.fullHealthMs),
      target: {
        text: `<= dead-after + 15 s/GiB lost (${(heal.fullHealthBudgetMs / 1000).toFixed(1)} s)`,
        met: kill.fullHealthMs <= heal.fullHealthBudgetMs,
      },
    },
  ];
  const copySpeed = rawCopy && { name: `raw copy (${rawCopy.cache})`, value: rawCopy.mibPerSec, unit: 'MiB/s' };
  figures.push(compared(
    'heal: re-replication, declared dead -> full health',
    { value: kill.rereplicationMibPerSec, unit: 'MiB/s' },
    copySpeed,
    ratioAtLeast(rereplicationRatioTarget),
  ));
  const size = formatSize(foreground.totalBytes);
  const loadedOps = [
    { name: `put ${size} during healing`, loaded: foreground.loadedPut, unloadedMibPerSec: foreground.unloadedPutMibPerSec },
    { name: `get ${size} during healing, ${foreground.getCache} cache`, loaded: foreground.loadedGet, unloadedMibPerSec: foreground.unloadedGetMibPerSec },
  ];
  for (const { name, loaded, unloadedMibPerSec } of loadedOps) {
    const figure = compared(
      name,
      { value: loaded.mibPerSec, unit: 'MiB/s' },
      { name: 'idle cluster', value: unloadedMibPerSec, unit: 'MiB/s' },
      ratioAtLeast(foregroundDuringHealingRatioTarget),
    );
    // Below 100 %, healing ended before the op did: the op was partly unloaded.
    figures.push({ ...figure, detail: `healing ran ${Math.round(loaded.healingShare * 100)} % of it` });
  }
  const loadedKill = foreground.loadedKill;
  figures.push({
    name: `heal with that get+put: kill -> full health, ${formatSize(loadedKill.lostBytes)} lost`,
    ...seconds(loadedKill.fullHealthMs),
    detail: `${afterDeadAfter(loadedKill.fullHealthMs)}, ${loadedKill.rereplicationMibPerSec.toFixed(0)} MiB/s`,
  });
  return figures;
}

/** Scrubbing with no cap: how fast verification can go, against a raw read of the same disk. */
function scrubFigures({ scrub, rawRead }: BenchResults): Figure[] {
  if (!scrub) return [];
  const readSpeed = rawRead && { name: `raw read (${rawRead.cache})`, value: rawRead.mibPerSec, unit: 'MiB/s' };
  const figure = compared(`scrub (verify), no cap, ${scrub.cache} cache`, { value: scrub.mibPerSec, unit: 'MiB/s' }, readSpeed, () => undefined);
  return [{ ...figure, detail: `default cap ${scrub.defaultCapMibPerSec} MiB/s` }];
}

function compared(
  name: string,
  measure: Measure,
  baseline: (Measure & { name: string }) | undefined,
  target: (figure: Figure) => Figure['target'],
): Figure {
  const figure: Figure = { name, ...measure, baseline, ratio: baseline && measure.value / baseline.value };
  return { ...figure, target: target(figure) };
}

function ratioAtLeast(minimum: number): (figure: Figure) => Figure['target'] {
  const text = `>= ${Math.round(minimum * 100)} % of baseline`;
  return (figure) => ({ text, met: figure.ratio !== undefined && figure.ratio >= minimum });
}
