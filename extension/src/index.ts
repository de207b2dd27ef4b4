import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import {
  INotebookTracker,
  Notebook,
  NotebookActions
} from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { trackStageChips } from './chips';
import { ISidebarOptions, MlopsSidebar } from './sidebar';
import { STAGES, stageOfSource } from './stages';

const PLUGIN_ID = 'mlops-nb:plugin';

namespace CommandIDs {
  export const showSidebar = 'mlops-nb:show-sidebar';
  export const insertStage = 'mlops-nb:insert-stage-cell';
}

const mlopsIcon = new LabIcon({
  name: 'mlops-nb:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<circle cx="5" cy="6" r="2.6"/><circle cx="12" cy="12" r="2.6"/><circle cx="19" cy="18" r="2.6"/>' +
    '<rect x="6.2" y="8" width="1.6" height="6" transform="rotate(-45 7 11)"/>' +
    '<rect x="13.2" y="14" width="1.6" height="6" transform="rotate(-45 14 17)"/>' +
    '</g></svg>'
});

/**
 * The index in STAGES of the stage a new stage cell most likely has: the one after the last stage
 * cell above the active cell (`requirements` at the top of a notebook).
 */
function nextStage(notebook: Notebook): number {
  let last = -1;
  const cells = notebook.widgets.slice(0, notebook.activeCellIndex + 1);
  for (const cell of cells) {
    const stage = stageOfSource(cell.model.sharedModel.getSource());
    const index = (STAGES as readonly string[]).indexOf(stage ?? '');
    if (index >= 0) {
      last = index;
    }
  }
  return Math.min(last + 1, STAGES.length - 1);
}

function sidebarOptions(settings: ISettingRegistry.ISettings | null): ISidebarOptions {
  const get = <T>(key: string, fallback: T): T =>
    settings ? ((settings.composite[key] as T) ?? fallback) : fallback;
  return {
    store: get('store', ''),
    refreshInterval: get('refreshInterval', 10),
    pageSize: get('pageSize', 50)
  };
}

/**
 * mlops-nb in JupyterLab: the MLOps sidebar, stage chips on `%%stage` cells, and two commands.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'MLOps sidebar (projects, runs, stages, gates, models) and stage labels on %%stage cells.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry],
  activate: async (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const sidebar = new MlopsSidebar(sidebarOptions(null));
    sidebar.id = 'mlops-nb-sidebar';
    sidebar.title.icon = mlopsIcon;
    sidebar.title.label = '';
    app.shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, 'mlops-nb-sidebar');

    trackStageChips(tracker);

    app.commands.addCommand(CommandIDs.showSidebar, {
      label: 'MLOps: Show sidebar',
      caption: 'Show the MLOps sidebar: projects, runs, stages and models',
      icon: mlopsIcon,
      execute: () => {
        app.shell.activateById(sidebar.id);
      }
    });

    app.commands.addCommand(CommandIDs.insertStage, {
      label: 'MLOps: Insert stage cell',
      caption: 'Insert a %%stage cell below the active cell',
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const panel = tracker.currentWidget;
        if (!panel) {
          return;
        }
        const notebook = panel.content;
        const result = await InputDialog.getItem({
          title: 'Insert stage cell',
          label: 'Stage',
          items: [...STAGES],
          current: nextStage(notebook)
        });
        if (!result.button.accept || !result.value) {
          return;
        }
        const active = notebook.activeCell;
        const reuse =
          active !== null &&
          active.model.type === 'code' &&
          active.model.sharedModel.getSource().trim() === '';
        if (!reuse) {
          NotebookActions.insertBelow(notebook);
        }
        const cell = notebook.activeCell;
        if (cell) {
          cell.model.sharedModel.setSource(`%%stage ${result.value}\n`);
          notebook.mode = 'edit';
          cell.editor?.setCursorPosition({ line: 1, column: 0 });
        }
      }
    });

    if (palette) {
      palette.addItem({ command: CommandIDs.showSidebar, category: 'MLOps' });
      palette.addItem({ command: CommandIDs.insertStage, category: 'MLOps' });
    }

    if (settingRegistry) {
      try {
        const settings = await settingRegistry.load(PLUGIN_ID);
        sidebar.configure(sidebarOptions(settings));
        settings.changed.connect(() =>
          sidebar.configure(sidebarOptions(settings))
        );
      } catch (reason) {
        console.error('mlops-nb: could not load the settings', reason);
      }
    }
  }
};

export default plugin;
