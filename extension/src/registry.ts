/**
 * The registry part of the sidebar: each model with its versions and aliases.
 */
import { h } from './dom';
import { API } from './request';

export function renderRegistry(registry: API.IRegistry): HTMLElement {
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
