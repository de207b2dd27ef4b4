import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * The JSON the server extension (mlops_nb/server.py) answers, route by route.
 */
export namespace API {
  export interface IProject {
    project: string;
    runs: number;
    last_run: number | null;
  }

  export interface IProjects {
    store: { path: string; exists: boolean };
    projects: IProject[];
  }

  export interface IRequirement {
    metric: string;
    op: string;
    threshold: number;
    target?: string | null;
    notes?: string | null;
  }

  export interface IGate {
    metric: string;
    op: string;
    threshold: number;
    value: number | null;
    /** 1/0 in a runs page (SQL), true/false in a run's view. */
    passed: number | boolean;
    stage_id?: number | null;
    time?: number;
  }

  export interface IRunRow {
    run_id: number;
    name: string;
    kind: string;
    status: string;
    start_time: number;
    end_time: number | null;
    duration: number | null;
    parent_id: number | null;
    metrics: Record<string, number | null>;
    requirement: IRequirement | null;
    gate: IGate | null;
    warnings: number;
  }

  export interface IRunsPage {
    project: string;
    where: string;
    sort: string;
    order: 'asc' | 'desc';
    limit: number;
    offset: number;
    total: number;
    metrics: string[];
    runs: IRunRow[];
  }

  export interface ICaptureItem {
    name: string;
    kind: string;
    summary: string;
    fingerprint: string | null;
    warning?: string;
  }

  export interface IAttempt {
    id: number;
    attempt: number;
    seq: number;
    status: 'running' | 'ok' | 'error';
    start_time: number;
    duration: number | null;
    error: string | null;
    execution_count: number | null;
    cell_id: string | null;
    variables: string[];
    captures: ICaptureItem[];
  }

  /** A stage's state, derived once by the run's view (stale: its inputs changed after it ran). */
  export type StageState = 'not run' | 'running' | 'ok' | 'error' | 'stale';

  export interface IStage {
    stage: string;
    state: StageState;
    /** The latest attempt's status; null when the stage has not run. */
    status: string | null;
    attempt_count: number;
    duration: number | null;
    start_time: number | null;
    error: string | null;
    execution_count: number | null;
    captured: string[];
    attempts: IAttempt[];
  }

  export interface IChildRun {
    id: number;
    name: string;
    status: string;
    start_time: number;
    end_time: number | null;
    duration: number | null;
    decision: string;
    metrics: Record<string, number | null>;
  }

  export interface IArtifact {
    name: string;
    kind: string;
    sha256: string;
    size: number;
    created: number;
  }

  export interface IWarning {
    kind: string;
    stage: string | null;
    message: string;
  }

  /** One run's view (mlops_nb/tracking/views.py run_view). */
  export interface IRun {
    id: number;
    project: string;
    name: string;
    kind: string;
    status: string;
    start_time: number;
    end_time: number | null;
    duration: number | null;
    error: string | null;
    parent_id: number | null;
    notebook: string | null;
    git_commit: string | null;
    git_dirty: boolean | null;
    environment: Record<string, unknown>;
    params: Record<string, unknown>;
    metrics: Record<string, number | null>;
    tags: Record<string, string | null>;
    requirement: IRequirement | null;
    gate: IGate | null;
    gates: IGate[];
    warnings: IWarning[];
    stages: IStage[];
    retraining: IChildRun[];
    artifacts: IArtifact[];
  }

  export interface IModelVersion {
    version: number;
    run_id: number | null;
    class: string | null;
    created: number;
    description: string | null;
    aliases: string[];
  }

  export interface IModel {
    name: string;
    versions: IModelVersion[];
    aliases: Record<string, number>;
  }

  export interface IRegistry {
    models: IModel[];
  }
}

/**
 * Call a route of the server extension and return its JSON.
 *
 * @param endPoint the route under `mlops-nb/api/`, e.g. `projects`
 * @param query query parameters; empty and undefined values are left out
 * @param settings the server connection settings
 * @throws ServerConnection.ResponseError carrying the server's `message` on any non-2xx answer
 */
export async function requestAPI<T>(
  endPoint: string,
  query: Record<string, string | number | undefined> = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') {
      params[key] = String(value);
    }
  }
  const url =
    URLExt.join(settings.baseUrl, 'mlops-nb', 'api', endPoint) +
    URLExt.objectToQueryString(params);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    const message = (data as { message?: string } | null)?.message;
    throw new ServerConnection.ResponseError(
      response,
      message || response.statusText
    );
  }
  return data as T;
}
