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
