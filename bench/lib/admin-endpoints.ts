/**
 * Reading a server's admin port (every gfs process serves /metrics, the master also
 * /status): how the bench watches what a cluster does without reaching into it.
 */

/**
 * Sample values by metric name, summed over label sets: every gfs process labels all
 * its samples with its component, and the counters read here have no other labels.
 */
export type MetricSamples = Map<string, number>;

export async function fetchMetrics(adminAddr: string): Promise<MetricSamples> {
  const response = await fetch(`http://${adminAddr}/metrics`);
  if (!response.ok) throw new Error(`GET http://${adminAddr}/metrics: HTTP ${response.status}`);
  return parseSamples(await response.text());
}

export async function fetchJson<T>(adminAddr: string, path: string): Promise<T> {
  const response = await fetch(`http://${adminAddr}${path}`);
  if (!response.ok) throw new Error(`GET http://${adminAddr}${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

/** A metric the page must have: a missing one means a renamed metric, not a zero. */
export function sampleOf(samples: MetricSamples, name: string): number {
  const value = samples.get(name);
  if (value === undefined) throw new Error(`metric ${name} is not exported (renamed?)`);
  return value;
}

/** `name value` and `name{labels} value` lines; comments (# HELP, # TYPE) are skipped. */
function parseSamples(text: string): MetricSamples {
  const samples: MetricSamples = new Map();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match) samples.set(match[1]!, (samples.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return samples;
}
