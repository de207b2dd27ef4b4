/**
 * The "MLOps" sidebar: projects, one page of runs, one run's stages as a timeline, the registry.
 */
import { ServerConnection } from '@jupyterlab/services';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { API, requestAPI } from './request';
import { isStage, stageClass } from './stages';

/** The least time between two automatic refreshes. */
export const MIN_REFRESH_SECONDS = 5;

export interface ISidebarOptions {
  /** The store to read, relative to the server's root; empty means the server's setting. */
  store: string;
  /** Seconds between automatic refreshes while the sidebar is visible (at least 5). */
  refreshInterval: number;
  /** Runs per page. */
  pageSize: number;
}

type Child = Node | string | null | undefined | false;

/** Build an element: `h('div', { class: 'x', title: 'y' }, child, ...)`. */
function h(
  tag: string,
  attrs: Record<string, string | number | undefined> = {},
  ...children: Child[]
): HTMLElement {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined) {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child);
    }
  }
  return node;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.round(seconds % 60)} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatWhen(epochSeconds: number | null | undefined): string {
  if (!epochSeconds) {
    return '';
  }
  const ago = Date.now() / 1000 - epochSeconds;
  if (ago < 60) {
    return 'just now';
  }
  if (ago < 3600) {
    return `${Math.floor(ago / 60)} min ago`;
  }
  if (ago < 86400) {
    return `${Math.floor(ago / 3600)} h ago`;
  }
  return new Date(epochSeconds * 1000).toLocaleDateString();
}

export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '–';
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      return value.toLocaleString();
    }
    return Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3
      ? value.toExponential(3)
      : String(Number(value.toPrecision(4)));
  }
  return String(value);
}

function gateText(gate: API.IGate): string {
  const verdict = gate.passed ? 'passed' : 'FAILED';
  return `${gate.metric} ${gate.op} ${gate.threshold}: ${verdict} (${formatValue(gate.value)})`;
}

/**
 * The sidebar widget. `refresh()` reloads everything it shows; it also refreshes itself every
 * `refreshInterval` seconds while visible.
 */
export class MlopsSidebar extends Widget {
  constructor(options: ISidebarOptions) {
    super();
    this._options = { ...options };
    this.addClass('mlops-Sidebar');
    this.title.caption = 'MLOps: runs, stages and models';
    this._buildControls();
  }

  /** Apply new settings; refreshes when the store changed. */
  configure(options: Partial<ISidebarOptions>): void {
    const storeChanged =
      options.store !== undefined && options.store !== this._options.store;
    this._options = { ...this._options, ...options };
    if (storeChanged) {
      this._project = null;
      this._selectedRun = null;
      this._offset = 0;
    }
    if (this.isVisible) {
      this._startTimer();
      if (storeChanged) {
        void this.refresh();
      }
    }
  }

  /** Reload projects, the runs page, the selected run and the registry, then draw. */
  async refresh(): Promise<void> {
    if (this._loading) {
      this._again = true;
      return this._loading;
    }
    this._loading = this._load().finally(() => {
      this._loading = null;
      if (this._again) {
        this._again = false;
        void this.refresh();
      }
    });
    return this._loading;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
    this._startTimer();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stopTimer();
  }

  dispose(): void {
    this._stopTimer();
    super.dispose();
  }

  // -- loading ---------------------------------------------------------------------------------

  private _query(extra: Record<string, string | number | undefined> = {}) {
    return { store: this._options.store, ...extra };
  }

  private async _load(): Promise<void> {
    this._refreshButton.classList.add('mlops-mod-spinning');
    try {
      const [projects, registry] = await Promise.all([
        requestAPI<API.IProjects>('projects', this._query()),
        requestAPI<API.IRegistry>('registry', this._query())
      ]);
      this._projects = projects;
      this._registry = registry;
      const names = projects.projects.map(p => p.project);
      if (!this._project || !names.includes(this._project)) {
        this._project = names[0] ?? null;
        this._offset = 0;
        this._selectedRun = null;
      }
      this._filterError = '';
      this._page = null;
      if (this._project) {
        try {
          this._page = await requestAPI<API.IRunsPage>(
            `projects/${encodeURIComponent(this._project)}/runs`,
            this._query({
              where: this._where,
              sort: this._sortKey(),
              order: this._order,
              limit: this._options.pageSize,
              offset: this._offset
            })
          );
        } catch (error) {
          if (this._where && error instanceof ServerConnection.ResponseError) {
            this._filterError = error.message;
          } else {
            throw error;
          }
        }
      }
      this._run = null;
      if (this._selectedRun !== null) {
        try {
          this._run = await requestAPI<API.IRun>(
            `runs/${this._selectedRun}`,
            this._query()
          );
        } catch (error) {
          this._selectedRun = null;
        }
      }
      this._error = '';
    } catch (error) {
      this._error = (error as Error).message || String(error);
    } finally {
      this._refreshButton.classList.remove('mlops-mod-spinning');
    }
    this._render();
  }

  private _sortKey(): string {
    return this._sort === 'metric'
      ? this._metric
        ? `metrics.${this._metric}`
        : 'run_id'
      : this._sort;
  }

  private _startTimer(): void {
    this._stopTimer();
    const seconds = Math.max(
      MIN_REFRESH_SECONDS,
      this._options.refreshInterval || 0
    );
    this._timer = window.setInterval(() => {
      if (this.isVisible && !document.hidden) {
        void this.refresh();
      }
    }, seconds * 1000);
  }

  private _stopTimer(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  // -- controls (built once, so focus and typing survive refreshes) ---------------------------

  private _buildControls(): void {
    this._refreshButton = h(
      'button',
      {
        class: 'mlops-icon-button mlops-refresh',
        title: 'Refresh (also every few seconds while this panel is open)',
        'aria-label': 'Refresh'
      },
      refreshIcon.element({ tag: 'span' })
    );
    this._refreshButton.addEventListener('click', () => void this.refresh());
    const header = h(
      'div',
      { class: 'mlops-header' },
      h('h2', { class: 'mlops-title' }, 'MLOps'),
      this._refreshButton
    );

    this._projectSelect = h('select', {
      class: 'mlops-project',
      'aria-label': 'Project'
    }) as HTMLSelectElement;
    this._projectSelect.addEventListener('change', () => {
      this._project = this._projectSelect.value;
      this._offset = 0;
      this._selectedRun = null;
      this._metric = '';
      void this.refresh();
    });
    this._metricSelect = h('select', {
      class: 'mlops-metric',
      'aria-label': 'Metric shown'
    }) as HTMLSelectElement;
    this._metricSelect.addEventListener('change', () => {
      this._metric = this._metricSelect.value;
      if (this._sort === 'metric') {
        void this.refresh();
      } else {
        this._render();
      }
    });
    this._whereInput = h('input', {
      class: 'mlops-where',
      type: 'search',
      placeholder: 'Filter, e.g. metrics.f1 > 0.8',
      'aria-label': 'Filter runs',
      spellcheck: 'false'
    }) as HTMLInputElement;
    this._whereInput.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this._where = this._whereInput.value.trim();
        this._offset = 0;
        void this.refresh();
      }
    });
    this._whereInput.addEventListener('search', () => {
      if (!this._whereInput.value && this._where) {
        this._where = '';
        this._offset = 0;
        void this.refresh();
      }
    });
    this._controls = h(
      'div',
      { class: 'mlops-controls' },
      h(
        'label',
        { class: 'mlops-field' },
        h('span', {}, 'Project'),
        this._projectSelect
      ),
      h(
        'label',
        { class: 'mlops-field' },
        h('span', {}, 'Metric'),
        this._metricSelect
      ),
      this._whereInput
    );
    this._body = h('div', { class: 'mlops-body' });
    this.node.append(header, this._controls, this._body);
  }

  private _syncSelect(
    select: HTMLSelectElement,
    options: [string, string][],
    value: string
  ): void {
    const wanted = JSON.stringify(options);
    if (select.dataset.options !== wanted) {
      select.replaceChildren(
        ...options.map(([key, label]) => h('option', { value: key }, label))
      );
      select.dataset.options = wanted;
    }
    select.value = value;
  }

  // -- drawing --------------------------------------------------------------------------------

  private _render(): void {
    const projects = this._projects;
    const page = this._page;
    const empty = !projects || projects.projects.length === 0;
    this._controls.hidden = empty;
    if (projects && !empty) {
      this._syncSelect(
        this._projectSelect,
        projects.projects.map(p => [
          p.project,
          `${p.project} (${p.runs.toLocaleString()})`
        ]),
        this._project ?? ''
      );
    }
    if (page) {
      if (!this._metric || !page.metrics.includes(this._metric)) {
        const required = page.runs.find(r => r.requirement)?.requirement
          ?.metric;
        this._metric =
          required && page.metrics.includes(required)
            ? required
            : (page.metrics[0] ?? '');
      }
      this._syncSelect(
        this._metricSelect,
        page.metrics.length
          ? page.metrics.map(m => [m, m])
          : [['', 'no metrics yet']],
        this._metric
      );
    }
    const sections: Child[] = [];
    if (this._error) {
      sections.push(h('div', { class: 'mlops-error', role: 'alert' }, this._error));
    }
    if (empty && projects) {
      sections.push(this._renderEmpty(projects.store));
    } else if (page || this._filterError) {
      sections.push(this._renderRuns(page));
      if (this._run) {
        sections.push(this._renderRun(this._run));
      }
    }
    if (this._registry && this._registry.models.length) {
      sections.push(this._renderRegistry(this._registry));
    }
    if (projects) {
      sections.push(
        h(
          'div',
          { class: 'mlops-footer' },
          `Store: ${projects.store.path}`,
          projects.store.exists ? '' : ' (not created yet)'
        )
      );
    }
    this._body.replaceChildren(...(sections.filter(Boolean) as Node[]));
    this.node.dataset.rendered = String(Date.now());
  }

  private _renderEmpty(store: API.IProjects['store']): HTMLElement {
    return h(
      'div',
      { class: 'mlops-empty' },
      h('h3', {}, 'No runs recorded yet'),
      h(
        'p',
        {},
        'Record a run from a notebook in this folder. Load the extension once:'
      ),
      h('pre', {}, h('code', {}, '%load_ext mlops_nb')),
      h('p', {}, 'then start each lifecycle cell with its stage:'),
      h('pre', {}, h('code', {}, '%%stage data\ndf = pd.read_csv("data.csv")')),
      h(
        'p',
        {},
        'Stages: requirements, data, eda, features, selection, model, tuning, validation. ',
        'Every stage cell you run appears here. The palette command ',
        h('em', {}, 'MLOps: Insert stage cell'),
        ' adds one for you.'
      ),
      h(
        'p',
        { class: 'mlops-muted' },
        store.exists
          ? `The store ${store.path} has no runs yet.`
          : `This panel reads ${store.path} in the folder JupyterLab serves; a notebook records ` +
              'runs in mlops.db beside itself. For a notebook in a subfolder, set the Store ' +
              'setting (Settings › MLOps), e.g. to notebooks/mlops.db.'
      )
    );
  }

  private _renderRuns(page: API.IRunsPage | null): HTMLElement {
    const section = h('section', { class: 'mlops-runs' });
    if (this._filterError) {
      section.append(h('pre', { class: 'mlops-error', role: 'alert' }, this._filterError));
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
    previous.addEventListener('click', () => {
      this._offset = Math.max(0, this._offset - page.limit);
      void this.refresh();
    });
    next.addEventListener('click', () => {
      this._offset += page.limit;
      void this.refresh();
    });
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
      ['metric', this._metric || 'Metric', 'mlops-col-metric']
    ];
    for (const [key, label, cls] of columns) {
      const arrow =
        key && key === this._sort ? (this._order === 'desc' ? ' ▾' : ' ▴') : '';
      const cell = h('span', { class: cls, title: key ? `Sort by ${label}` : undefined }, label + arrow);
      if (key) {
        cell.classList.add('mlops-sortable');
        cell.addEventListener('click', () => {
          this._order =
            this._sort === key && this._order === 'desc' ? 'asc' : 'desc';
          this._sort = key;
          this._offset = 0;
          void this.refresh();
        });
      }
      head.append(cell);
    }
    const list = h('div', { class: 'mlops-run-list', role: 'list' }, head);
    if (!page.runs.length) {
      list.append(h('div', { class: 'mlops-muted mlops-pad' }, page.where ? 'No run matches the filter.' : 'No runs.'));
    }
    for (const run of page.runs) {
      list.append(this._renderRunRow(run));
    }
    section.append(list);
    return section;
  }

  private _renderRunRow(run: API.IRunRow): HTMLElement {
    let gate: HTMLElement;
    if (run.gate) {
      gate = h(
        'span',
        {
          class: `mlops-gate ${run.gate.passed ? 'mlops-pass' : 'mlops-fail'}`,
          title: gateText(run.gate)
        },
        run.gate.passed ? '✓' : '✗'
      );
    } else if (run.requirement) {
      const r = run.requirement;
      gate = h(
        'span',
        { class: 'mlops-gate mlops-pending', title: `${r.metric} ${r.op} ${r.threshold}: validation has not run` },
        '…'
      );
    } else {
      gate = h('span', { class: 'mlops-gate mlops-muted', title: 'No requirement' }, '–');
    }
    const value = this._metric ? run.metrics[this._metric] : undefined;
    const row = h(
      'div',
      {
        class: 'mlops-run',
        role: 'listitem',
        tabindex: 0,
        'data-run-id': run.run_id,
        title: `${run.name}: ${run.status}, started ${formatWhen(run.start_time)}${run.duration !== null ? `, took ${formatDuration(run.duration)}` : ''}`
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
      h(
        'span',
        { class: `mlops-col-status mlops-status mlops-status-${run.status}` },
        run.status
      ),
      h('span', { class: 'mlops-col-gate' }, gate),
      h('span', { class: 'mlops-col-metric' }, formatValue(value))
    );
    if (run.run_id === this._selectedRun) {
      row.classList.add('mlops-mod-selected');
      row.setAttribute('aria-selected', 'true');
    }
    const open = () => {
      this._selectedRun = this._selectedRun === run.run_id ? null : run.run_id;
      void this.refresh();
    };
    row.addEventListener('click', open);
    row.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        open();
      }
    });
    return row;
  }

  private _renderRun(run: API.IRun): HTMLElement {
    const close = h('button', { class: 'mlops-icon-button', title: 'Close', 'aria-label': 'Close run' }, '×');
    close.addEventListener('click', () => {
      this._selectedRun = null;
      this._run = null;
      this._render();
    });
    const meta = [
      run.kind,
      run.duration !== null ? formatDuration(run.duration) : 'running',
      `started ${formatWhen(run.start_time)}`,
      run.notebook ? run.notebook.split('/').pop() : ''
    ].filter(Boolean);
    const section = h(
      'section',
      { class: 'mlops-run-detail', 'data-run-id': run.run_id },
      h(
        'div',
        { class: 'mlops-section-title' },
        h('span', {}, `Run ${run.run_id} · ${run.name}`),
        h('span', { class: `mlops-status mlops-status-${run.status}` }, run.status),
        close
      ),
      h('div', { class: 'mlops-muted mlops-meta' }, meta.join(' · '))
    );
    if (run.error) {
      section.append(h('pre', { class: 'mlops-error' }, run.error));
    }
    const gate = run.gates[run.gates.length - 1];
    if (gate) {
      section.append(
        h('div', { class: `mlops-gate-line ${gate.passed ? 'mlops-pass' : 'mlops-fail'}` }, `${gate.passed ? '✓' : '✗'} Gate ${gateText(gate)}`)
      );
    } else if (run.requirement) {
      const r = run.requirement;
      section.append(
        h('div', { class: 'mlops-gate-line mlops-pending' }, `Requirement ${r.metric} ${r.op} ${r.threshold}: not checked yet (run the validation stage)`)
      );
    }
    const stageNames = new Set(run.stages.map(s => s.stage));
    const general = run.warnings.filter(w => !w.stage || !stageNames.has(w.stage));
    for (const warning of general) {
      section.append(this._renderWarning(warning));
    }
    section.append(this._renderTimeline(run));
    const metrics = Object.entries(run.metrics);
    if (metrics.length) {
      section.append(this._renderPairs('Metrics', metrics, true));
    }
    const params = Object.entries(run.params);
    if (params.length) {
      section.append(this._renderPairs(`Params (${params.length})`, params, false));
    }
    return section;
  }

  private _renderWarning(warning: API.IWarning): HTMLElement {
    return h(
      'div',
      { class: `mlops-warning mlops-warning-${warning.kind}` },
      h('span', { class: 'mlops-warning-icon', 'aria-hidden': 'true' }, '⚠'),
      h('span', {}, warning.message)
    );
  }

  private _renderTimeline(run: API.IRun): HTMLElement {
    const timeline = h('div', { class: 'mlops-timeline', role: 'list', 'aria-label': 'Stages' });
    if (!run.stages.length) {
      timeline.append(h('div', { class: 'mlops-muted mlops-pad' }, 'No stage has run yet.'));
      return timeline;
    }
    const attempts = run.stages.flatMap(s => s.attempts);
    const begin = Math.min(run.start_time, ...attempts.map(a => a.start_time));
    const now = Date.now() / 1000;
    const finish = Math.max(
      run.end_time ?? now,
      ...attempts.map(a => a.start_time + (a.duration ?? now - a.start_time))
    );
    const span = Math.max(finish - begin, 1e-6);
    for (const stage of run.stages) {
      const track = h('div', { class: 'mlops-track' });
      for (const attempt of stage.attempts) {
        const duration = attempt.duration ?? now - attempt.start_time;
        const left = ((attempt.start_time - begin) / span) * 100;
        const width = (duration / span) * 100;
        track.append(
          h('span', {
            class: `mlops-bar ${stageClass(stage.stage)} mlops-bar-${attempt.status}`,
            style: `left: ${left.toFixed(2)}%; width: ${width.toFixed(2)}%`,
            title: `${stage.stage}, attempt ${attempt.attempt}: ${attempt.status}, ${formatDuration(attempt.duration) || 'running'}${attempt.execution_count ? `, cell [${attempt.execution_count}]` : ''}`
          })
        );
      }
      const latest = stage.attempts[stage.attempts.length - 1];
      const statusMark =
        stage.status === 'ok' ? '✓' : stage.status === 'error' ? '✗' : '…';
      const row = h(
        'div',
        { class: 'mlops-stage-row', role: 'listitem', 'data-stage': stage.stage },
        h(
          'span',
          { class: `mlops-stage-name` },
          h('span', { class: `mlops-dot ${stageClass(stage.stage)}` }),
          isStage(stage.stage) ? stage.stage : `${stage.stage}?`
        ),
        track,
        h(
          'span',
          { class: `mlops-stage-status mlops-stage-status-${stage.status}`, title: stage.status },
          statusMark
        ),
        h(
          'span',
          { class: 'mlops-stage-time' },
          formatDuration(stage.duration),
          stage.attempts.length > 1
            ? h('span', { class: 'mlops-attempts', title: `${stage.attempts.length} attempts` }, ` ×${stage.attempts.length}`)
            : ''
        )
      );
      const details = h('div', { class: 'mlops-stage-details' });
      if (latest.error) {
        details.append(h('div', { class: 'mlops-stage-error' }, latest.error));
      }
      for (const item of latest.captures) {
        details.append(
          h(
            'div',
            { class: 'mlops-capture', title: item.fingerprint ? `fingerprint ${item.fingerprint}` : undefined },
            h('code', {}, item.name),
            h('span', { class: 'mlops-capture-kind' }, item.kind),
            h('span', { class: 'mlops-muted' }, item.summary),
            item.warning ? h('span', { class: 'mlops-capture-warning', title: item.warning }, ' ⚠') : ''
          )
        );
      }
      for (const warning of run.warnings.filter(w => w.stage === stage.stage)) {
        details.append(this._renderWarning(warning));
      }
      timeline.append(row);
      if (details.childElementCount) {
        timeline.append(details);
      }
    }
    return timeline;
  }

  private _renderPairs(
    title: string,
    pairs: [string, unknown][],
    open: boolean
  ): HTMLElement {
    const grid = h('div', { class: 'mlops-pairs' });
    for (const [key, value] of pairs) {
      const text =
        typeof value === 'object' && value !== null
          ? JSON.stringify(value)
          : formatValue(value);
      grid.append(h('span', { class: 'mlops-key', title: key }, key), h('span', { class: 'mlops-value', title: text }, text));
    }
    const details = h('details', { class: 'mlops-kv' }, h('summary', {}, title), grid);
    (details as HTMLDetailsElement).open = open;
    return details;
  }

  private _renderRegistry(registry: API.IRegistry): HTMLElement {
    const section = h(
      'section',
      { class: 'mlops-registry' },
      h(
        'div',
        { class: 'mlops-section-title' },
        h('span', {}, 'Models'),
        h('span', { class: 'mlops-count' }, String(registry.models.length))
      )
    );
    for (const model of registry.models) {
      const aliases = Object.entries(model.aliases).sort();
      section.append(
        h(
          'div',
          { class: 'mlops-model', 'data-model': model.name },
          h('span', { class: 'mlops-model-name' }, model.name),
          h('span', { class: 'mlops-muted' }, `${model.versions.length} version${model.versions.length === 1 ? '' : 's'}`),
          h(
            'span',
            { class: 'mlops-aliases' },
            ...aliases.map(([alias, version]) => {
              const found = model.versions.find(v => v.version === version);
              const from = found?.run_id ? `, from run ${found.run_id}` : '';
              return h(
                'span',
                { class: `mlops-alias mlops-alias-${alias}`, title: `${alias}: version ${version}${from}` },
                `${alias} v${version}`
              );
            })
          )
        )
      );
    }
    return section;
  }

  private _options: ISidebarOptions;
  private _projects: API.IProjects | null = null;
  private _registry: API.IRegistry | null = null;
  private _page: API.IRunsPage | null = null;
  private _run: API.IRun | null = null;
  private _project: string | null = null;
  private _selectedRun: number | null = null;
  private _metric = '';
  private _where = '';
  private _sort = 'run_id';
  private _order: 'asc' | 'desc' = 'desc';
  private _offset = 0;
  private _error = '';
  private _filterError = '';
  private _loading: Promise<void> | null = null;
  private _again = false;
  private _timer: number | null = null;
  private _refreshButton!: HTMLElement;
  private _projectSelect!: HTMLSelectElement;
  private _metricSelect!: HTMLSelectElement;
  private _whereInput!: HTMLInputElement;
  private _controls!: HTMLElement;
  private _body!: HTMLElement;
}
