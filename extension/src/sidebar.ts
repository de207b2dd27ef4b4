/**
 * The "MLOps" sidebar: loading, refreshing and the controls; the views it draws live beside it
 * (projects.ts, runs.ts, run.ts, registry.ts) and every value is written by format.ts.
 */
import { ServerConnection } from '@jupyterlab/services';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { Child, h } from './dom';
import { projectOptions, renderEmpty } from './projects';
import { renderRegistry } from './registry';
import { API, requestAPI } from './request';
import { renderRun } from './run';
import { renderRuns } from './runs';

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
      this._syncSelect(this._projectSelect, projectOptions(projects), this._project ?? '');
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
      sections.push(renderEmpty(projects.store));
    } else if (page || this._filterError) {
      sections.push(
        renderRuns(page, {
          filterError: this._filterError,
          sort: this._sort,
          order: this._order,
          metric: this._metric,
          selectedRun: this._selectedRun,
          onPage: offset => {
            this._offset = offset;
            void this.refresh();
          },
          onSort: key => {
            this._order = this._sort === key && this._order === 'desc' ? 'asc' : 'desc';
            this._sort = key;
            this._offset = 0;
            void this.refresh();
          },
          onOpen: runId => {
            this._selectedRun = this._selectedRun === runId ? null : runId;
            void this.refresh();
          }
        })
      );
      if (this._run) {
        sections.push(
          renderRun(this._run, () => {
            this._selectedRun = null;
            this._run = null;
            this._render();
          })
        );
      }
    }
    if (this._registry && this._registry.models.length) {
      sections.push(renderRegistry(this._registry));
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
