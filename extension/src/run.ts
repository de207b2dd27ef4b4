/**
 * The run detail of the sidebar: the run's view (mlops_nb/tracking/views.py, the same data the
 * status widget and `mlops-nb show` render): gate, warnings, each stage that ran with its `state`
 * (a stale stage shows as stale, with its warning), attempts on a timeline, what its served model
 * saw (serving.ts), metrics and params.
 */
import { h } from './dom';
import { formatDuration, formatNumber, formatValue, formatWhen } from './format';
import { API } from './request';
import { gateText } from './runs';
import { renderServing } from './serving';
import { isStage, stageClass } from './stages';

/** The mark each stage state shows (as the status widget's timeline). */
const STATE_MARK: Record<API.StageState, string> = {
  ok: '✓',
  error: '✗',
  stale: '!',
  running: '…',
  'not run': ''
};

export function renderRun(run: API.IRun, onClose: () => void): HTMLElement {
  const close = h('button', { class: 'mlops-icon-button', title: 'Close', 'aria-label': 'Close run' }, '×');
  close.addEventListener('click', onClose);
  const meta = [
    run.kind,
    run.duration !== null ? formatDuration(run.duration) : run.status,
    `started ${formatWhen(run.start_time)}`,
    run.notebook ? run.notebook.split('/').pop() : ''
  ].filter(Boolean);
  const section = h(
    'section',
    { class: 'mlops-run-detail', 'data-run-id': run.id },
    h(
      'div',
      { class: 'mlops-section-title' },
      h('span', {}, `Run ${run.id} · ${run.name}`),
      h('span', { class: `mlops-status mlops-status-${run.status}` }, run.status),
      close
    ),
    h('div', { class: 'mlops-muted mlops-meta' }, meta.join(' · '))
  );
  if (run.error) {
    section.append(h('pre', { class: 'mlops-error' }, run.error));
  }
  if (run.gate) {
    section.append(
      h(
        'div',
        { class: `mlops-gate-line ${run.gate.passed ? 'mlops-pass' : 'mlops-fail'}` },
        `${run.gate.passed ? '✓' : '✗'} Gate ${gateText(run.gate)}`
      )
    );
  } else if (run.requirement) {
    const r = run.requirement;
    section.append(
      h(
        'div',
        { class: 'mlops-gate-line mlops-pending' },
        `Requirement ${r.metric} ${r.op} ${formatNumber(r.threshold)}: not checked yet (run the validation stage)`
      )
    );
  }
  const ran = run.stages.filter(s => s.state !== 'not run');
  const shown = new Set(ran.map(s => s.stage));
  for (const warning of run.warnings.filter(w => !w.stage || !shown.has(w.stage))) {
    section.append(renderWarning(warning));
  }
  section.append(renderTimeline(run, ran));
  const serving = renderServing(run);
  if (serving) {
    section.append(serving);
  }
  const metrics = Object.entries(run.metrics);
  if (metrics.length) {
    section.append(renderPairs('Metrics', metrics, true));
  }
  const params = Object.entries(run.params);
  if (params.length) {
    section.append(renderPairs(`Params (${params.length})`, params, false));
  }
  return section;
}

function renderWarning(warning: API.IWarning): HTMLElement {
  return h(
    'div',
    { class: `mlops-warning mlops-warning-${warning.kind}` },
    h('span', { class: 'mlops-warning-icon', 'aria-hidden': 'true' }, '⚠'),
    h('span', {}, warning.message)
  );
}

function renderTimeline(run: API.IRun, stages: API.IStage[]): HTMLElement {
  const timeline = h('div', { class: 'mlops-timeline', role: 'list', 'aria-label': 'Stages' });
  if (!stages.length) {
    timeline.append(h('div', { class: 'mlops-muted mlops-pad' }, 'No stage has run yet.'));
    return timeline;
  }
  const attempts = stages.flatMap(s => s.attempts);
  const begin = Math.min(run.start_time, ...attempts.map(a => a.start_time));
  const now = Date.now() / 1000;
  const finish = Math.max(
    run.end_time ?? now,
    ...attempts.map(a => a.start_time + (a.duration ?? now - a.start_time))
  );
  const span = Math.max(finish - begin, 1e-6);
  for (const stage of stages) {
    const track = h('div', { class: 'mlops-track' });
    for (const attempt of stage.attempts) {
      const duration = attempt.duration ?? now - attempt.start_time;
      const left = ((attempt.start_time - begin) / span) * 100;
      const width = (duration / span) * 100;
      const cell = attempt.execution_count ? `, cell [${attempt.execution_count}]` : '';
      track.append(
        h('span', {
          class: `mlops-bar ${stageClass(stage.stage)} mlops-bar-${attempt.status}`,
          style: `left: ${left.toFixed(2)}%; width: ${width.toFixed(2)}%`,
          title: `${stage.stage}, attempt ${attempt.attempt}: ${attempt.status}, ${formatDuration(attempt.duration) || 'running'}${cell}`
        })
      );
    }
    const latest = stage.attempts[stage.attempts.length - 1];
    const row = h(
      'div',
      { class: 'mlops-stage-row', role: 'listitem', 'data-stage': stage.stage, 'data-state': stage.state },
      h(
        'span',
        { class: 'mlops-stage-name' },
        h('span', { class: `mlops-dot ${stageClass(stage.stage)}` }),
        isStage(stage.stage) ? stage.stage : `${stage.stage}?`
      ),
      track,
      h(
        'span',
        { class: `mlops-stage-status mlops-stage-status-${stage.state}`, title: stage.state },
        STATE_MARK[stage.state]
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
      details.append(renderWarning(warning));
    }
    timeline.append(row);
    if (details.childElementCount) {
      timeline.append(details);
    }
  }
  return timeline;
}

function renderPairs(title: string, pairs: [string, unknown][], open: boolean): HTMLElement {
  const grid = h('div', { class: 'mlops-pairs' });
  for (const [key, value] of pairs) {
    const text = formatValue(value);
    grid.append(h('span', { class: 'mlops-key', title: key }, key), h('span', { class: 'mlops-value', title: text }, text));
  }
  const details = h('details', { class: 'mlops-kv' }, h('summary', {}, title), grid);
  (details as HTMLDetailsElement).open = open;
  return details;
}
