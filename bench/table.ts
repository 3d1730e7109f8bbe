/** Plain-text table of figures for stdout: fixed columns, numbers right-aligned. */
import type { Figure, Measure } from './figures';

const header = ['figure', 'value', 'baseline', 'ratio to baseline', 'target'];

export function formatTable(figures: Figure[]): string {
  const rows = figures.map((figure) => [
    figure.name,
    formatMeasure(figure),
    figure.baseline ? `${formatMeasure(figure.baseline)} (${figure.baseline.name})` : '-',
    figure.ratio === undefined ? '-' : `${(figure.ratio * 100).toFixed(1)} %`,
    figure.target ? `${figure.target.text} ${figure.target.met ? '(met)' : '(missed)'}` : '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const rightAligned = new Set([1, 3]);
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (rightAligned.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join(' | ')
      .trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('-|-'), ...rows.map(line)].join('\n');
}

function formatMeasure(measure: Measure & { detail?: string }): string {
  const value = `${formatNumber(measure.value)} ${measure.unit}`;
  return measure.detail ? `${value} (${measure.detail})` : value;
}

/** Three significant figures are all a noisy machine can vouch for; big counts get separators. */
function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toPrecision(3);
}
