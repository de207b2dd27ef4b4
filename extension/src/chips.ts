/**
 * Stage chips: every code cell whose source starts with `%%stage NAME` shows a label in the stage's
 * colour, kept in step with the source as the user types.
 */
import { Cell } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { isStage, stageClass, stageOfSource } from './stages';

const CHIP_CLASS = 'mlops-stage-chip';
const CELL_ATTRIBUTE = 'data-mlops-stage';

/**
 * Watch every notebook the tracker knows, now and later.
 */
export function trackStageChips(tracker: INotebookTracker): void {
  tracker.forEach(panel => watchNotebook(panel));
  tracker.widgetAdded.connect((_, panel) => watchNotebook(panel));
}

function watchNotebook(panel: NotebookPanel): void {
  const notebook = panel.content;
  let scheduled = false;
  const attachAll = () => {
    scheduled = false;
    notebook.widgets.forEach(attachCell);
  };
  // New, moved or re-created cells: their widgets exist once the notebook handled the change.
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(attachAll);
    }
  };
  const watchModel = () => {
    notebook.model?.cells.changed.connect(schedule);
    schedule();
  };
  notebook.modelChanged.connect(watchModel);
  watchModel();
  void panel.context.ready.then(schedule);
}

const watched = new WeakSet<Cell>();

function attachCell(cell: Cell): void {
  if (watched.has(cell) || cell.isDisposed) {
    return;
  }
  watched.add(cell);
  const onChange = (_: unknown, change: { sourceChange?: unknown }) => {
    if (change.sourceChange) {
      renderChip(cell);
    }
  };
  // Keep the shared model: a disposed cell no longer has one.
  const shared = cell.model.sharedModel;
  shared.changed.connect(onChange);
  cell.disposed.connect(() => shared.changed.disconnect(onChange));
  renderChip(cell);
  // A cell outside the viewport builds its DOM later; draw the chip again then.
  void cell.ready.then(() => renderChip(cell));
}

/**
 * Show, update or remove the chip of one cell from its current source.
 */
export function renderChip(cell: Cell): void {
  if (cell.isDisposed) {
    return;
  }
  const stage =
    cell.model.type === 'code'
      ? stageOfSource(cell.model.sharedModel.getSource())
      : null;
  let chip = cell.node.querySelector<HTMLElement>(`:scope > .${CHIP_CLASS}`);
  if (stage === null) {
    chip?.remove();
    cell.node.removeAttribute(CELL_ATTRIBUTE);
    return;
  }
  if (!chip) {
    chip = document.createElement('span');
    cell.node.appendChild(chip);
  }
  const known = isStage(stage);
  chip.className = `${CHIP_CLASS} ${stageClass(stage)}`;
  chip.textContent = known ? stage : `${stage}?`;
  chip.title = known
    ? `Stage "${stage}": mlops-nb records this cell as the ${stage} stage when it runs`
    : `"${stage}" is not a stage; mlops-nb will not record this cell`;
  cell.node.setAttribute(CELL_ATTRIBUTE, known ? stage : 'unknown');
}
