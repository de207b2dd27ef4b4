/**
 * The runs part of the sidebar: one page of a project's runs with status, gate and a metric,
 * sortable by its headers, paged by two buttons.
 */
import { h } from './dom';
import { formatDuration, formatNumber, formatValue, formatWhen } from './format';
import { API } from './request';

/** What the runs list shows and what a click on it asks for. */
export interface IRunsView {
  filterError: string;
  sort: string;
  order: 'asc' | 'desc';
  metric: string;
  selectedRun: number | null;
  /** Show the page starting at `offset`. */
  onPage(offset: number): void;
  /** Sort by `key` (toggles the order when it is the current key). */
  onSort(key: string): void;
  /** Open (or close) run `runId`'s detail. */
  onOpen(runId: number): void;
}

export function gateText(gate: API.IGate): string {
  const verdict = gate.passed ? 'passed' : 'FAILED';
  return `${gate.metric} ${gate.op} ${formatNumber(gate.threshold)}: ${verdict} (${formatValue(gate.value)})`;
}

export function renderRuns(page: API.IRunsPage | null, view: IRunsView): HTMLElement {
  const section = h('section', { class: 'mlops-runs' });
  if (view.filterError) {
    section.append(h('pre', { class: 'mlops-error', role: 'alert' }, view.filterError));
  }
  if (!page) {
    return section;
  }
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.runs.length;
  const previous = h('button', { class: 'mlops-icon-button', title: 'Newer page', 'aria-label': 'Previous page' }, '‹');
  const next = h('button', { class: 'mlops-icon-button', title: 'Older page', 'aria-label': 'Next page' }, '›');
  (previous as HTMLButtonElement).disabled = page.offset === 0;
  (next as HTMLButtonElement).disabled = last >= page.total;
  previous.addEventListener('click', () => view.onPage(Math.max(0, page.offset - page.limit)));
  next.addEventListener('click', () => view.onPage(page.offset + page.limit));
  section.append(
    h(
      'div',
      { class: 'mlops-section-title' },
      h('span', {}, 'Runs'),
      h(
        'span',
        { class: 'mlops-count' },
        `${first.toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()}`
      ),
      previous,
      next
    )
  );
  const head = h('div', { class: 'mlops-run mlops-run-head' });
  const columns: [string, string, string][] = [
    ['run_id', '#', 'mlops-col-id'],
    ['name', 'Run', 'mlops-col-name'],
    ['status', 'Status', 'mlops-col-status'],
    ['', 'Gate', 'mlops-col-gate'],
    ['metric', view.metric || 'Metric', 'mlops-col-metric']
  ];
  for (const [key, label, cls] of columns) {
    const arrow = key && key === view.sort ? (view.order === 'desc' ? ' ▾' : ' ▴') : '';
    const cell = h('span', { class: cls, title: key ? `Sort by ${label}` : undefined }, label + arrow);
    if (key) {
      cell.classList.add('mlops-sortable');
      cell.addEventListener('click', () => view.onSort(key));
    }
    head.append(cell);
  }
  const list = h('div', { class: 'mlops-run-list', role: 'list' }, head);
  if (!page.runs.length) {
    list.append(h('div', { class: 'mlops-muted mlops-pad' }, page.where ? 'No run matches the filter.' : 'No runs.'));
  }
  for (const run of page.runs) {
    list.append(renderRunRow(run, view));
  }
  section.append(list);
  return section;
}

function renderRunRow(run: API.IRunRow, view: IRunsView): HTMLElement {
  let gate: HTMLElement;
  if (run.gate) {
    gate = h(
      'span',
      { class: `mlops-gate ${run.gate.passed ? 'mlops-pass' : 'mlops-fail'}`, title: gateText(run.gate) },
      run.gate.passed ? '✓' : '✗'
    );
  } else if (run.requirement) {
    const r = run.requirement;
    gate = h(
      'span',
      {
        class: 'mlops-gate mlops-pending',
        title: `${r.metric} ${r.op} ${formatNumber(r.threshold)}: validation has not run`
      },
      '…'
    );
  } else {
    gate = h('span', { class: 'mlops-gate mlops-muted', title: 'No requirement' }, '–');
  }
  const value = view.metric ? run.metrics[view.metric] : undefined;
  const took = run.duration !== null ? `, took ${formatDuration(run.duration)}` : '';
  const row = h(
    'div',
    {
      class: 'mlops-run',
      role: 'listitem',
      tabindex: 0,
      'data-run-id': run.run_id,
      title: `${run.name}: ${run.status}, started ${formatWhen(run.start_time)}${took}`
    },
    h('span', { class: 'mlops-col-id' }, String(run.run_id)),
    h(
      'span',
      { class: 'mlops-col-name' },
      run.name,
      run.warnings
        ? h('span', { class: 'mlops-warn-count', title: `${run.warnings} integrity warning(s)` }, ` ⚠${run.warnings}`)
        : ''
    ),
    h('span', { class: `mlops-col-status mlops-status mlops-status-${run.status}` }, run.status),
    h('span', { class: 'mlops-col-gate' }, gate),
    h('span', { class: 'mlops-col-metric' }, formatValue(value))
  );
  if (run.run_id === view.selectedRun) {
    row.classList.add('mlops-mod-selected');
    row.setAttribute('aria-selected', 'true');
  }
  row.addEventListener('click', () => view.onOpen(run.run_id));
  row.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      view.onOpen(run.run_id);
    }
  });
  return row;
}
