/**
 * The lifecycle vocabulary, in order, as mlops_nb/stages.py defines it (a test keeps them equal),
 * and how a cell names its stage.
 */

export const STAGES = [
  'requirements',
  'data',
  'eda',
  'features',
  'selection',
  'model',
  'tuning',
  'validation',
  'deployment',
  'retraining'
] as const;

export type StageName = (typeof STAGES)[number];

/**
 * `%%stage NAME` on a cell's first non-blank line, as mlops_nb.notebook.session.STAGE_HEADER reads it.
 */
const STAGE_HEADER = /^\s*%%stage[ \t]+([A-Za-z_]\w*)[ \t]*(?:\n|$)/;

/**
 * The stage a cell's source names, or null when it is not a stage cell.
 */
export function stageOfSource(source: string): string | null {
  const match = STAGE_HEADER.exec(source);
  return match ? match[1] : null;
}

export function isStage(name: string | null | undefined): name is StageName {
  return !!name && (STAGES as readonly string[]).includes(name);
}

/**
 * The CSS class carrying a stage's colour (see style/base.css).
 */
export function stageClass(name: string | null | undefined): string {
  return isStage(name) ? `mlops-stage-${name}` : 'mlops-stage-unknown';
}
