// Building DOM nodes without HTML strings: whatever a user wrote only ever becomes text
// nodes or attribute values, never markup. (No innerHTML anywhere in the client.)

const PROPERTIES = new Set(['value', 'checked', 'selected', 'indeterminate']);
const FORBIDDEN = new Set(['style', 'innerHTML', 'outerHTML', 'srcdoc']);

/** h('button', {class: 'x', onclick: fn, 'aria-label': 'Send'}, 'text', child, [more]) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (FORBIDDEN.has(key)) throw new Error(`h(): ${key} is not allowed`);
    if (key === 'class') {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'text') {
      el.textContent = value;
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false || child === true) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace an element's children with these (strings become text). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Patch parent's children in place into `next` (freshly built nodes), so that elements the
 *  user may be pointing at or focused on survive an update. An element with a data-key is
 *  matched to the old child of the same key, which stays: its attributes are updated and
 *  its children patched the same way (a custom element's children are its own). It keeps
 *  its listeners, so keys go only on elements whose listeners do not depend on what may
 *  change. Other nodes are matched in order: the old one stays if equal, else the new one
 *  takes its place. Keys are unique among siblings. */
export function reconcile(parent, next) {
  const focused = document.activeElement;
  const keyed = new Map();
  const plain = [];
  for (const node of parent.childNodes) {
    if (node.dataset?.key) keyed.set(node.dataset.key, node);
    else plain.push(node);
  }
  let index = 0;
  const nodes = next.map((node) => {
    const key = node.dataset?.key;
    const old = key ? keyed.get(key) : plain[index++];
    if (!old || old.localName !== node.localName) return node;
    if (!key) return old.isEqualNode(node) ? old : node;
    for (const { name } of [...old.attributes]) if (!node.hasAttribute(name)) old.removeAttribute(name);
    for (const { name, value } of node.attributes) if (old.getAttribute(name) !== value) old.setAttribute(name, value);
    if (!old.localName.includes('-')) reconcile(old, [...node.childNodes]);
    return old;
  });
  let cursor = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) cursor = cursor.nextSibling;
    else parent.insertBefore(node, cursor);
  }
  while (cursor) {
    const after = cursor.nextSibling;
    cursor.remove();
    cursor = after;
  }
  // A kept element moved among its siblings loses the focus: give it back.
  if (focused !== document.activeElement && parent.contains(focused)) focused.focus({ preventScroll: true });
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: 'medium',
  timeStyle: 'short',
});

/** A <time> element for a Unix-milliseconds instant: the time today, else date and time. */
export function timeElement(ms, className = 'time') {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return h('time', {
    class: className,
    datetime: date.toISOString(),
    title: dateTimeFormat.format(date),
    text: today ? timeFormat.format(date) : dateTimeFormat.format(date),
  });
}

export function formatDateTime(ms) {
  return dateTimeFormat.format(new Date(ms));
}

export function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

/** Batch re-renders of a component to once per microtask. */
export function scheduler(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      fn();
    });
  };
}
