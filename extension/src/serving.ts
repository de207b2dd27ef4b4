/**
 * The Serving section of the run detail: a deployed model's traffic, latency and input drift over
 * time next to its retraining runs. It renders the run view's `monitoring` key
 * (mlops_nb/tracking/monitoring.py, built from the view's `serving` minutes), the same dict the
 * status widget and `%mlops status --text` render, so the three show the same buckets and verdict.
 */
import { h } from './dom';
import { formatNumber, formatTime } from './format';
import { API } from './request';

export namespace Serving {
  export type Verdict = 'drift' | 'warn' | 'ok' | null;

  export interface IServeRow {
    kind: 'serve';
    start: number;
    minutes: number;
    requests: number;
    rows: number;
    errors: number;
    latency_p50: number | null;
    latency_p99: number | null;
    drift_share: number | null;
    drifted: string[];
    verdict: Verdict;
    version_dir: string | null;
  }

  export interface IRetrainRow {
    kind: 'retrain';
    start: number;
    run_id: number;
    name: string | null;
    status: string;
    decision: string;
    dataset_drift: string | null;
  }

  /** run_view's `monitoring` (monitoring_summary). */
  export interface IMonitoring {
    packages: string[];
    version_dir: string | null;
    model_version: number | null;
    minutes: number;
    totals: { requests: number; rows: number; errors: number; bad_requests: number };
    latest: { minute: number; requests: number; rows: number; latency_p50: number | null; latency_p99: number | null };
    verdict: Verdict;
    drifted: string[];
    warned: string[];
    drift_share: number | null;
    drifted_minutes: number;
    columns: number;
    headline: string;
    bucket_seconds: number;
    bucket: string;
    rows: (IServeRow | IRetrainRow)[];
    series: { minute: number[]; requests: number[]; latency_p99: (number | null)[]; drift_share: (number | null)[] };
  }
}

/** A run view that may carry `monitoring` (absent from views of an older server). */
export type IMonitoredRun = API.IRun & { monitoring?: Serving.IMonitoring | null };

/** A latency in ms with one decimal, as the widget and `mlops-nb monitor` write it. */
function ms(value: number | null): string {
  return value === null || value === undefined ? '' : value.toFixed(1);
}

/** `HH:MM` of a row's start (the full local time is its title). */
function clock(epochSeconds: number): string {
  return formatTime(epochSeconds).slice(11);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The section, or null when the run's model was never served. */
export function renderServing(run: IMonitoredRun): HTMLElement | null {
  const m = run.monitoring;
  if (!m) {
    return null;
  }
  const errors = m.totals.errors + m.totals.bad_requests;
  const summary = h(
    'div',
    { class: 'mlops-serving-summary' },
    `${m.version_dir ?? ''} (model v${m.model_version ?? ''}) · ${m.totals.requests} requests, ` +
      `${m.totals.rows} rows, ${plural(errors, 'error')} over ${plural(m.minutes, 'minute')} · ` +
      `latest p50 ${ms(m.latest.latency_p50)} ms, p99 ${ms(m.latest.latency_p99)} ms`
  );
  const verdict = h(
    'div',
    { class: `mlops-serving-verdict mlops-drift-${m.verdict ?? 'none'}`, 'data-verdict': m.verdict ?? '' },
    h('span', { class: 'mlops-serving-badge' }, m.headline),
    h('span', { class: 'mlops-muted' }, ` · ${m.drifted_minutes} of ${m.minutes} minutes drifting`)
  );
  const sparks = h(
    'div',
    { class: 'mlops-sparks' },
    spark('requests / min', m.series.requests, 'mlops-spark-requests'),
    spark('p99 ms', m.series.latency_p99, 'mlops-spark-latency'),
    spark('drift share', m.series.drift_share, 'mlops-spark-drift')
  );
  const table = h('div', { class: 'mlops-serving-rows', role: 'list', 'aria-label': `Serving per ${m.bucket}` });
  for (const row of m.rows) {
    table.append(row.kind === 'serve' ? serveRow(row) : retrainRow(row));
  }
  const details = h(
    'details',
    { class: 'mlops-kv mlops-serving', 'data-verdict': m.verdict ?? '' },
    h('summary', {}, `Serving (per ${m.bucket})`),
    summary,
    verdict,
    sparks,
    table,
    h('div', { class: 'mlops-muted mlops-serving-packages', title: m.packages.join('\n') }, m.packages.join(', '))
  );
  (details as HTMLDetailsElement).open = true;
  return details;
}

function serveRow(row: Serving.IServeRow): HTMLElement {
  const drift =
    row.drift_share === null ? '' : `${Math.round(row.drift_share * 100)}% ${row.drifted.join(', ')}`.trim();
  return h(
    'div',
    { class: 'mlops-serving-row', role: 'listitem', 'data-kind': 'serve', 'data-verdict': row.verdict ?? '' },
    h('span', { class: 'mlops-serving-when', title: formatTime(row.start) }, clock(row.start)),
    h('span', { class: 'mlops-serving-version' }, row.version_dir ?? ''),
    h('span', { class: 'mlops-serving-count', title: `${row.rows} rows, ${row.errors} errors` }, `${row.requests} req`),
    h('span', { class: 'mlops-serving-latency', title: 'p50 / p99 latency (ms)' }, `${ms(row.latency_p50)} / ${ms(row.latency_p99)} ms`),
    h('span', { class: `mlops-serving-drift mlops-drift-${row.verdict ?? 'none'}`, title: 'input drift' }, drift)
  );
}

function retrainRow(row: Serving.IRetrainRow): HTMLElement {
  const drift = row.dataset_drift === null ? '' : ` · dataset drift: ${row.dataset_drift}`;
  return h(
    'div',
    { class: 'mlops-serving-row mlops-serving-retrain', role: 'listitem', 'data-kind': 'retrain' },
    h('span', { class: 'mlops-serving-when', title: formatTime(row.start) }, clock(row.start)),
    h('span', { class: `mlops-status mlops-status-${row.status}` }, `retrain run ${row.run_id}`),
    h('span', { class: 'mlops-serving-decision', title: `${row.decision}${drift}` }, `${row.decision}${drift}`)
  );
}

/** A small SVG line from 0 to the series' maximum (missing values skipped), with that maximum. */
function spark(label: string, values: (number | null)[], cls: string): HTMLElement {
  const width = 100;
  const height = 22;
  const points = values.map((v, i) => [i, v] as const).filter((p): p is readonly [number, number] => p[1] !== null);
  const box = h('span', { class: `mlops-spark ${cls}`, title: label });
  if (!points.length) {
    box.append(h('span', { class: 'mlops-muted mlops-spark-label' }, `${label} –`));
    return box;
  }
  const top = Math.max(...points.map(p => p[1])) || 1;
  const step = width / Math.max(values.length - 1, 1);
  const y = (v: number) => (height - 2 - (v / top) * (height - 4)).toFixed(1);
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  if (points.length > 1) {
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    line.setAttribute('points', points.map(([i, v]) => `${(i * step).toFixed(1)},${y(v)}`).join(' '));
    svg.append(line);
  } else {
    const dot = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    dot.setAttribute('cx', (width / 2).toFixed(1));
    dot.setAttribute('cy', y(points[0][1]));
    dot.setAttribute('r', '2');
    svg.append(dot);
  }
  box.append(
    h('span', { class: 'mlops-muted mlops-spark-label' }, label, h('span', {}, ` max ${formatNumber(top, 3)}`)),
    svg
  );
  return box;
}
