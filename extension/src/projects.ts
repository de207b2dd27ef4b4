/**
 * The projects part of the sidebar: the project picker's options and what an empty store says.
 */
import { h } from './dom';
import { API } from './request';

/** `[value, label]` options of the project picker: each project with its run count. */
export function projectOptions(projects: API.IProjects): [string, string][] {
  return projects.projects.map(p => [
    p.project,
    `${p.project} (${p.runs.toLocaleString()})`
  ]);
}

/** What the sidebar shows before any run is recorded: how to record one. */
export function renderEmpty(store: API.IProjects['store']): HTMLElement {
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
