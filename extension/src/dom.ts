/**
 * The one DOM helper the sidebar's views share.
 */

export type Child = Node | string | null | undefined | false;

/** Build an element: `h('div', { class: 'x', title: 'y' }, child, ...)`. */
export function h(
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
