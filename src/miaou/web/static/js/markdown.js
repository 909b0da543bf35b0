// Discord-flavoured markdown to DOM nodes, safely: the source is parsed into a small tree
// and built with createElement/createTextNode only, so no user text is ever parsed as HTML.
// Links open only http(s) URLs, in a new tab, with rel="noopener noreferrer".
//
// Supported: **bold**, *italic* / _italic_, __underline__, ~~strike~~, `code`, ```code
// blocks```, ||spoilers||, links (bare, <angled> and [masked](https://...)), mentions
// <@user> <@&role> <#channel> @everyone @here, backslash escapes, line breaks.

const MAX_DEPTH = 6;

// Inline rules, tried in order at the current position (sticky regexes).
const RULES = [
  ['escape', /\\([^A-Za-z0-9\s])/y],
  ['code', /(`+)([\s\S]*?[^`])\1(?!`)/y],
  ['angled', /<(https?:\/\/[^\s>]+)>/y],
  ['user', /<@!?([0-9]{1,20})>/y],
  ['role', /<@&([0-9]{1,20})>/y],
  ['channel', /<#([0-9]{1,20})>/y],
  ['everyone', /@(everyone|here)\b/y],
  ['masked', /\[([^[\]\n]{1,256})\]\((https?:\/\/[^\s()<>]+)\)/y],
  ['url', /https?:\/\/[^\s<]*[^\s<.,:;"')\]!?*_~|]/y],
  ['strong', /\*\*(?=\S)([\s\S]*?\S)\*\*(?!\*)/y],
  ['underline', /__(?=\S)([\s\S]*?\S)__(?!_)/y],
  ['em', /\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/y],
  ['em_', /_(?=[^\s_])([\s\S]*?[^\s_])_(?![\w_])/y],
  ['strike', /~~(?=\S)([\s\S]*?\S)~~/y],
  ['spoiler', /\|\|([\s\S]+?)\|\|/y],
];
const PLAIN = /[^\\`<@[*_~|\nh]+/y;
const WORD_BEFORE = /[\p{L}\p{N}_\\]$/u;

/** The source as a tree: [{type, ...}], blocks (code fences) then inline runs. */
export function parseMarkdown(source) {
  const nodes = [];
  const text = String(source ?? '');
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('```', at);
    const close = open < 0 ? -1 : text.indexOf('```', open + 3);
    if (open < 0 || close < 0) {
      nodes.push(...parseInline(text.slice(at), 0));
      break;
    }
    if (open > at) nodes.push(...parseInline(text.slice(at, open), 0));
    let body = text.slice(open + 3, close);
    let lang = null;
    const head = /^([A-Za-z0-9+#.-]{1,20})\n/.exec(body);
    if (head) {
      lang = head[1];
      body = body.slice(head[0].length);
    } else if (body.startsWith('\n')) {
      body = body.slice(1);
    }
    nodes.push({ type: 'codeblock', lang, text: body.replace(/\n$/, '') });
    at = close + 3;
    if (text[at] === '\n') at += 1; // the block ends its line
  }
  return nodes;
}

function parseInline(text, depth) {
  const out = [];
  let at = 0;
  const pushText = (value) => {
    const last = out[out.length - 1];
    if (last && last.type === 'text') last.text += value;
    else out.push({ type: 'text', text: value });
  };
  while (at < text.length) {
    if (text[at] === '\n') {
      out.push({ type: 'br' });
      at += 1;
      continue;
    }
    PLAIN.lastIndex = at;
    const plain = PLAIN.exec(text);
    if (plain) {
      pushText(plain[0]);
      at += plain[0].length;
      continue;
    }
    const found = matchRule(text, at, depth);
    if (found) {
      if (found.node.type === 'text') pushText(found.node.text);
      else out.push(found.node);
      at = found.end;
    } else {
      pushText(text[at]);
      at += 1;
    }
  }
  return out;
}

function matchRule(text, at, depth) {
  const before = text.slice(Math.max(0, at - 1), at);
  for (const [name, regex] of RULES) {
    regex.lastIndex = at;
    const m = regex.exec(text);
    if (!m) continue;
    const end = at + m[0].length;
    const inner = (group) =>
      depth >= MAX_DEPTH ? [{ type: 'text', text: group }] : parseInline(group, depth + 1);
    switch (name) {
      case 'escape':
        return { node: { type: 'text', text: m[1] }, end };
      case 'code':
        return { node: { type: 'code', text: trimCode(m[2]) }, end };
      case 'angled':
      case 'url': {
        if (name === 'url' && WORD_BEFORE.test(before)) break;
        const href = safeUrl(m[name === 'url' ? 0 : 1]);
        if (!href) break;
        return { node: { type: 'link', href, text: m[name === 'url' ? 0 : 1] }, end };
      }
      case 'masked': {
        const href = safeUrl(m[2]);
        if (!href) break;
        return { node: { type: 'link', href, text: m[1], masked: true }, end };
      }
      case 'user':
      case 'role':
      case 'channel':
        return { node: { type: name, id: m[1] }, end };
      case 'everyone':
        if (WORD_BEFORE.test(before)) break;
        return { node: { type: 'everyone', name: m[1] }, end };
      case 'em_':
        if (WORD_BEFORE.test(before)) break;
        return { node: { type: 'em', children: inner(m[1]) }, end };
      case 'strong':
      case 'underline':
      case 'em':
      case 'strike':
      case 'spoiler':
        return { node: { type: name, children: inner(m[1]) }, end };
      default:
        break;
    }
  }
  return null;
}

function trimCode(text) {
  return text.length > 2 && text.startsWith(' ') && text.endsWith(' ') ? text.slice(1, -1) : text;
}

/** The URL if it is a well-formed http(s) URL, else null. */
export function safeUrl(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Render to a DocumentFragment. ctx (all optional): meId; userName(id) -> string|null;
 * roleName(id); channel(id) -> {name, href}|null; myRoles: Set of role ids.
 */
export function renderMarkdown(source, ctx = {}) {
  const fragment = document.createDocumentFragment();
  for (const node of parseMarkdown(source)) fragment.append(build(node, ctx));
  return fragment;
}

/** The source as one line of plain text (previews): spoilers hidden, mentions named. */
export function plainText(source, ctx = {}) {
  const flat = (nodes) =>
    nodes
      .map((node) => {
        switch (node.type) {
          case 'text':
          case 'code':
          case 'codeblock':
          case 'link':
            return node.text;
          case 'br':
            return ' ';
          case 'spoiler':
            return '▒▒▒▒';
          case 'user':
            return `@${ctx.userName?.(node.id) ?? 'unknown-user'}`;
          case 'role':
            return `@${ctx.roleName?.(node.id) ?? 'deleted-role'}`;
          case 'channel':
            return `#${ctx.channel?.(node.id)?.name ?? 'unknown-channel'}`;
          case 'everyone':
            return `@${node.name}`;
          default:
            return flat(node.children ?? []);
        }
      })
      .join('');
  return flat(parseMarkdown(source)).replace(/\s+/g, ' ').trim();
}

function element(tag, className, children, ctx) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  for (const child of children) el.append(build(child, ctx));
  return el;
}

function build(node, ctx) {
  switch (node.type) {
    case 'text':
      return document.createTextNode(node.text);
    case 'br':
      return document.createElement('br');
    case 'strong':
      return element('strong', null, node.children, ctx);
    case 'em':
      return element('em', null, node.children, ctx);
    case 'underline':
      return element('u', null, node.children, ctx);
    case 'strike':
      return element('s', null, node.children, ctx);
    case 'code': {
      const code = document.createElement('code');
      code.className = 'md-code';
      code.textContent = node.text;
      return code;
    }
    case 'codeblock': {
      const pre = document.createElement('pre');
      pre.className = 'md-pre';
      const code = document.createElement('code');
      if (node.lang) code.dataset.lang = node.lang;
      code.textContent = node.text;
      pre.append(code);
      return pre;
    }
    case 'spoiler':
      return spoiler(element('span', 'spoiler', node.children, ctx));
    case 'link': {
      const a = document.createElement('a');
      a.className = 'md-link';
      a.href = node.href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = node.text;
      if (node.masked) a.title = node.href;
      return a;
    }
    case 'user': {
      const name = ctx.userName?.(node.id);
      const el = mention(name ? `@${name}` : '@unknown-user', node.id === ctx.meId);
      el.dataset.userId = node.id;
      return el;
    }
    case 'role': {
      const name = ctx.roleName?.(node.id);
      return mention(name ? `@${name}` : '@deleted-role', ctx.myRoles?.has(node.id) ?? false);
    }
    case 'channel': {
      const found = ctx.channel?.(node.id);
      if (!found) return mention('#unknown-channel', false);
      const a = document.createElement('a');
      a.className = 'mention';
      a.href = found.href;
      a.dataset.route = '';
      a.textContent = `#${found.name}`;
      return a;
    }
    case 'everyone':
      return mention(`@${node.name}`, true);
    default:
      return document.createTextNode('');
  }
}

function mention(text, me) {
  const el = document.createElement('span');
  el.className = me ? 'mention mention-me' : 'mention';
  el.textContent = text;
  return el;
}

function spoiler(el) {
  el.tabIndex = 0;
  el.setAttribute('role', 'button');
  el.setAttribute('aria-expanded', 'false');
  el.title = 'Spoiler: press to reveal';
  const reveal = (event) => {
    if (event.type === 'keydown' && event.key !== 'Enter' && event.key !== ' ') return;
    event.preventDefault();
    el.classList.add('revealed');
    el.setAttribute('aria-expanded', 'true');
    el.removeAttribute('role');
    el.removeAttribute('tabindex');
    el.removeAttribute('title');
  };
  el.addEventListener('click', reveal, { once: true });
  el.addEventListener('keydown', reveal);
  return el;
}
