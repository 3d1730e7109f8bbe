/** Byte and time units shared by the benchmarks; throughput is always reported in MiB/s. */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export function mibPerSec(bytes: number, elapsedMs: number): number {
  return bytes / MiB / (elapsedMs / 1000);
}

/** CPU cost normalised to one GiB moved, so runs of different sizes compare. */
export function cpuSecPerGiB(cpuSec: number, bytes: number): number {
  return cpuSec / (bytes / GiB);
}

/** process.cpuUsage() counts microseconds of user + system time. */
export function cpuUsageSec(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}

/** `1 GiB`, `256 MiB`, `1.5 GiB`: the figure names carry the size, so no trailing zeros. */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]];
  const [unit, unitBytes] = units.find(([, size]) => bytes >= size) ?? ['B', 1];
  return `${Number((bytes / unitBytes).toFixed(2))} ${unit}`;
}
