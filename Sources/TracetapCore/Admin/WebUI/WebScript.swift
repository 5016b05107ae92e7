/// The web UI's script, served as `/ui/app.js`.
enum WebScript {
    static let source = #"""
// Tracetap's web UI: a live list of exchanges (Server-Sent Events), an exchange's detail, a trace's
// waterfall, the rules. Plain DOM, no framework; every value from a capture goes in as text, never as HTML.
'use strict';

const ROW_HEIGHT = 22;
const MAX_ROWS = 10000;
const $ = (selector) => document.querySelector(selector);

const state = {
  session: 'current',      // the list's source: 'current' (this run, live) or a past session's name
  currentSession: null,    // this run's session name, null when capture is off
  all: [],                 // summaries, oldest first
  shown: [],               // those passing the filters
  lastSeq: 0,
  paused: false,
  waiting: [],             // arrived while paused
  selected: null,
  reveal: false,
  stream: null,
  ruleCount: 0,
};

// ---------- small helpers ----------

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    // Through the CSSOM: the Content-Security-Policy refuses style attributes.
    else if (key === 'style') node.style.cssText = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(2)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/// Replaces a node's children; arrays are flattened, null and false left out.
function fill(node, ...children) {
  node.replaceChildren(...children.flat(2).filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child)))));
  return node;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: 'same-origin', headers: { 'Content-Type': 'application/json' } }, options || {}));
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
  if (!response.ok) throw new Error((body && body.error) || response.status + ' ' + response.statusText);
  return body;
}

function millis(micros) {
  if (micros === undefined || micros === null || micros < 0) return '-';
  const ms = micros / 1000;
  return ms < 10 ? ms.toFixed(2) + ' ms' : ms < 1000 ? ms.toFixed(1) + ' ms' : (ms / 1000).toFixed(2) + ' s';
}

function bytes(n) {
  if (n === undefined || n === null) return '-';
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(1) + ' MiB';
}

function clock(unix) {
  const d = new Date(unix * 1000);
  return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

function statusClass(status) {
  return status === 0 ? 'err' : 's' + Math.floor(status / 100);
}

function base64Bytes(text) {
  const raw = atob(text || '');
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function headerValue(headers, name) {
  const found = (headers || []).find((pair) => pair[0].toLowerCase() === name);
  return found ? found[1] : '';
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    // Off a secure context (the admin port on another host over http) the clipboard API is missing.
    const area = el('textarea', {}, text);
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

function notice(text, kind) {
  const box = el('div', { class: 'notice ' + (kind || '') }, text);
  document.body.append(box);
  setTimeout(() => box.remove(), 4000);
}

// ---------- the list ----------

function matches(e) {
  const text = $('#filter-text').value.trim().toLowerCase();
  const status = $('#filter-status').value;
  const method = $('#filter-method').value;
  const trace = $('#filter-trace').value.trim().toLowerCase();
  if (status === 'err' ? e.status !== 0 : status && Math.floor(e.status / 100) !== Number(status[0])) return false;
  if (method && e.method !== method) return false;
  if (trace && !e.trace_id.startsWith(trace)) return false;
  if (text) {
    const haystack = [e.method, e.target, String(e.status), e.faults.join(' '), e.error || '', e.trace_id, e.request_id].join(' ').toLowerCase();
    if (!haystack.includes(text)) return false;
  }
  return true;
}

function refilter() {
  state.shown = state.all.filter(matches);
  renderList(true);
}

function add(exchanges) {
  if (!exchanges.length) return;
  const viewport = $('#viewport');
  const atBottom = viewport.scrollTop + viewport.clientHeight >= state.shown.length * ROW_HEIGHT - ROW_HEIGHT * 2;
  for (const e of exchanges) {
    state.all.push(e);
    if (matches(e)) state.shown.push(e);
  }
  if (state.all.length > MAX_ROWS) {
    // Drop the oldest tenth in one go rather than one row per arrival.
    state.all.splice(0, state.all.length - MAX_ROWS + MAX_ROWS / 10);
    state.shown = state.all.filter(matches);
  }
  renderList(atBottom);
}

function renderList(stickToBottom) {
  const viewport = $('#viewport');
  const rows = $('#rows');
  // Emptied first: rows placed far down by their transforms would stretch the scroll area.
  fill(rows);
  const height = state.shown.length * ROW_HEIGHT;
  $('#spacer').style.height = height + 'px';
  const maxTop = Math.max(0, height - viewport.clientHeight);
  if (stickToBottom || viewport.scrollTop > maxTop) viewport.scrollTop = maxTop;
  const first = Math.max(0, Math.floor(Math.min(viewport.scrollTop, maxTop) / ROW_HEIGHT) - 5);
  const last = Math.min(state.shown.length, first + Math.ceil(viewport.clientHeight / ROW_HEIGHT) + 10);
  for (let i = first; i < last; i++) rows.append(row(state.shown[i], i));
  $('#count').textContent = state.shown.length + ' of ' + state.all.length + ' exchanges'
    + (state.paused ? ', paused (' + state.waiting.length + ' waiting)' : '');
}

function row(e, index) {
  const faults = e.faults.map((f) => el('span', { class: 'badge fault' }, f));
  if (e.duplicate) faults.push(el('span', { class: 'badge dup' }, 'copy ' + e.duplicate.copy + '/' + e.duplicate.of));
  if (e.error) faults.push(el('span', { class: 'badge err' }, e.error));
  return el('div', {
    class: 'row' + (e.span_id === state.selected ? ' selected' : ''),
    style: 'transform: translateY(' + index * ROW_HEIGHT + 'px)',
    'data-span': e.span_id,
    onclick: () => { location.hash = '#/exchange/' + encodeURIComponent(state.session) + '/' + e.span_id; },
  },
  el('span', { class: 'time' }, clock(e.started_unix)),
  el('span', { class: 'method' }, e.method),
  el('span', { class: 'path', title: e.target }, e.target),
  el('span', { class: 'status ' + statusClass(e.status) }, e.status || '-'),
  el('span', { class: 'num' }, millis(e.duration_us)),
  el('span', { class: 'num' }, bytes(e.response_bytes)),
  el('span', { class: 'faults' }, faults));
}

function startStream() {
  if (state.stream) state.stream.close();
  const stream = new EventSource('/api/events?after=' + state.lastSeq);
  state.stream = stream;
  let batch = [];
  let scheduled = false;
  stream.addEventListener('exchange', (event) => {
    const e = JSON.parse(event.data);
    state.lastSeq = e.seq;
    if (state.session !== 'current') return;
    if (state.paused) { state.waiting.push(e); renderList(false); return; }
    batch.push(e);
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(() => { scheduled = false; const taken = batch; batch = []; add(taken); });
    }
  });
  stream.addEventListener('missed', () => notice('The list fell behind: some exchanges were skipped (the capture has them all).'));
  stream.onopen = () => $('#conn').className = 'dot on';
  stream.onerror = () => $('#conn').className = 'dot off';
}

// ---------- sessions ----------

async function loadSessions() {
  const picker = $('#session');
  fill(picker);
  let sessions = [];
  try {
    const answer = await api('/api/sessions');
    state.currentSession = answer.current;
    sessions = answer.sessions;
  } catch (e) {
    state.currentSession = null;  // capture is off
  }
  picker.append(el('option', { value: 'current' }, state.currentSession ? 'live: ' + state.currentSession : 'live (not recorded)'));
  for (const s of sessions) {
    if (!s.current) picker.append(el('option', { value: s.name }, s.name + ' (' + bytes(s.bytes) + ')'));
  }
  picker.value = state.session;
  updateHarLink();
}

function updateHarLink() {
  const link = $('#har');
  const name = state.session === 'current' ? state.currentSession : state.session;
  if (name) {
    link.href = '/api/sessions/' + encodeURIComponent(name) + '/har';
    link.setAttribute('download', 'tracetap-' + name + '.har');
    link.classList.remove('disabled');
  } else {
    link.removeAttribute('href');
    link.classList.add('disabled');
  }
}

async function switchSession(name) {
  state.session = name;
  state.all = [];
  state.shown = [];
  state.waiting = [];
  updateHarLink();
  if (name === 'current') {
    state.lastSeq = 0;
    startStream();
    renderList(true);
    return;
  }
  if (state.stream) { state.stream.close(); state.stream = null; $('#conn').className = 'dot'; }
  try {
    const answer = await api('/api/sessions/' + encodeURIComponent(name) + '/exchanges');
    add(answer.exchanges);
  } catch (e) {
    notice(e.message, 'bad');
  }
}

// ---------- detail ----------

function headerTable(headers) {
  return el('table', { class: 'headers' }, (headers || []).map(([name, value]) =>
    el('tr', {}, el('th', {}, name), el('td', { class: value.includes('[masked]') ? 'masked' : null }, value))));
}

function jsonTree(value, key) {
  const label = key === undefined ? null : el('span', { class: 'key' }, JSON.stringify(key) + ': ');
  if (value === null || typeof value !== 'object') {
    const kind = value === null ? 'null' : typeof value;
    return el('div', { class: 'leaf' }, label, el('span', { class: 'j-' + kind + (value === '[masked]' ? ' masked' : '') }, JSON.stringify(value)));
  }
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  const summary = isArray ? '[' + entries.length + ' items]' : '{' + entries.length + ' keys}';
  return el('details', { open: true, class: 'node' }, el('summary', {}, label, summary),
    entries.map(([k, v]) => jsonTree(v, isArray ? undefined : k)));
}

function hexDump(data) {
  const lines = [];
  const limit = Math.min(data.length, 65536);
  for (let offset = 0; offset < limit; offset += 16) {
    const chunk = data.subarray(offset, Math.min(offset + 16, limit));
    const hex = Array.from(chunk, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(chunk, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(offset.toString(16).padStart(8, '0') + '  ' + hex.padEnd(48) + '  ' + ascii);
  }
  if (data.length > limit) lines.push('... ' + (data.length - limit) + ' more bytes');
  return el('pre', { class: 'hex' }, lines.join('\n'));
}

function bodyView(message) {
  const data = base64Bytes(message.body_base64);
  const type = headerValue(message.headers, 'content-type').toLowerCase();
  const notes = [];
  if (message.decoded_from) notes.push('decoded from ' + message.decoded_from);
  if (message.body_truncated) notes.push('cut: the capture kept the first ' + bytes(data.length) + ' of ' + bytes(message.body_size));
  const note = notes.length ? el('p', { class: 'muted' }, notes.join('; ')) : null;
  if (!data.length) return el('p', { class: 'muted' }, message.body_size ? 'body of ' + bytes(message.body_size) + ' not kept' : 'no body');
  if (type.startsWith('image/')) {
    return el('div', { class: 'body' }, note, el('img', { class: 'preview', alt: 'response image', src: 'data:' + type.split(';')[0] + ';base64,' + message.body_base64 }));
  }
  let text = null;
  try { text = new TextDecoder('utf-8', { fatal: true }).decode(data); } catch (e) { text = null; }
  if (text !== null) {
    const start = text.trimStart()[0];
    if (type.includes('json') || start === '{' || start === '[') {
      try { return el('div', { class: 'body json' }, note, jsonTree(JSON.parse(text))); } catch (e) { /* not JSON after all: shown as text */ }
    }
    return el('div', { class: 'body' }, note, el('pre', { class: 'text' }, text));
  }
  return el('div', { class: 'body' }, note, hexDump(data));
}

/// The proxy's phases (read request, connect, send, wait for upstream, receive) as the server's spans
/// have them, on a bar; each phase's colour comes from its first word.
function timingBar(e) {
  const total = Math.max(e.timings_us.response_complete || 0, ...e.phases.map((p) => p.end_us), 1);
  const kind = (p) => p.name.split(' ')[0];
  return el('div', { class: 'timing' },
    el('div', { class: 'track' }, e.phases.map((p) => el('span', {
      class: 'seg ' + kind(p),
      style: 'left:' + (100 * p.start_us / total) + '%;width:' + Math.max(0.3, 100 * (p.end_us - p.start_us) / total) + '%',
      title: p.name + ' ' + millis(p.end_us - p.start_us),
    }))),
    el('div', { class: 'legend' }, e.phases.map((p) => el('span', { class: 'key-' + kind(p) }, p.name + ' ' + millis(p.end_us - p.start_us))),
      el('span', {}, 'total ' + millis(e.timings_us.response_complete))));
}

async function showExchange(session, spanID) {
  state.selected = spanID;
  renderList(false);
  const side = $('#side');
  const summary = state.all.find((e) => e.span_id === spanID);
  let e;
  try {
    e = await api('/api/sessions/' + encodeURIComponent(session) + '/exchanges/' + spanID + (state.reveal ? '?reveal=1' : ''));
  } catch (error) {
    fill(side, el('h2', {}, summary ? summary.method + ' ' + summary.target : 'Exchange'), el('p', { class: 'bad' }, error.message));
    return;
  }
  const sessionName = e.session;
  const replayPanel = el('div', { id: 'replay-result' });
  const count = el('input', { id: 'replay-count', type: 'number', min: 1, max: 100, value: 1, 'aria-label': 'copies' });
  const mode = el('select', { id: 'replay-mode', 'aria-label': 'replay mode' },
    el('option', { value: 'concurrent' }, 'at once (race)'), el('option', { value: 'sequential' }, 'one after another'));
  const faultType = el('select', { id: 'rule-type', 'aria-label': 'fault' },
    el('option', { value: 'delay' }, 'delay (ms)'), el('option', { value: 'abort' }, 'abort (status)'),
    el('option', { value: 'timeout' }, 'timeout (ms)'), el('option', { value: 'duplicate' }, 'duplicate (copies)'));
  const faultValue = el('input', { id: 'rule-value', type: 'number', value: 500, min: 1, 'aria-label': 'fault value' });
  faultType.addEventListener('change', () => { faultValue.value = { delay: 500, abort: 503, timeout: 2000, duplicate: 2 }[faultType.value]; });
  const curl = el('pre', { id: 'curl', class: 'curl', hidden: true }, e.curl);
  const duplicate = e.duplicate
    ? el('p', { class: 'dup' }, 'Copy ' + e.duplicate.copy + ' of ' + e.duplicate.of + ' (duplicate fault)' + (e.duplicate.difference ? ': ' + e.duplicate.difference : ': responses agree'))
    : null;
  fill(side,
    el('h2', { id: 'detail-title' }, el('span', { class: 'method' }, e.method), ' ', e.target, ' ',
      el('span', { class: 'status ' + statusClass(e.status), id: 'detail-status' }, e.status || 'no response')),
    el('p', { class: 'meta' }, 'trace ', el('a', { id: 'trace-link', href: '#/trace/' + encodeURIComponent(sessionName) + '/' + e.trace_id }, e.trace_id),
      ' · request ID ', e.request_id, ' · ', e.started, ' · ', e.client, ' → ', e.upstream, e.upstream_reused ? ' (reused connection)' : ''),
    e.error ? el('p', { class: 'bad' }, e.error + ': ' + (e.error_message || '')) : null,
    e.faults.length ? el('p', {}, 'Faults: ', e.faults.map((f) => el('span', { class: 'badge fault' }, f))) : null,
    duplicate,
    el('div', { class: 'actions' },
      el('button', { id: 'copy-curl', onclick: async () => { curl.hidden = false; notice(await copyText(e.curl) ? 'curl command copied' : 'select the command below to copy it'); } }, 'Copy as curl'),
      el('button', { id: 'reveal', onclick: () => { state.reveal = !state.reveal; showExchange(session, spanID); } }, state.reveal ? 'Mask secrets' : 'Reveal secrets'),
      el('span', { class: 'group' }, el('button', { id: 'replay', onclick: () => replay(sessionName, e, Number(count.value), mode.value, replayPanel) }, 'Replay'), ' × ', count, ' ', mode),
      el('span', { class: 'group' }, el('button', { id: 'add-rule', onclick: () => addRule(e, faultType.value, Number(faultValue.value)) }, 'Add rule'), ' for requests like this: ', faultType, faultValue)),
    curl,
    replayPanel,
    el('h3', {}, 'Timing'), timingBar(e),
    el('h3', {}, 'Request'), e.request ? [headerTable(e.request.headers), bodyView(e.request)] : el('p', { class: 'muted' }, 'no request head'),
    el('h3', {}, 'Response'), e.response
      ? [el('p', { class: 'meta' }, e.response.version + ' ' + e.response_status + ' ' + e.response_reason), headerTable(e.response.headers), bodyView(e.response)]
      : el('p', { class: 'muted' }, 'no response from the upstream'));
}

async function replay(session, e, count, mode, panel) {
  fill(panel, el('p', { class: 'muted' }, 'replaying...'));
  const body = { session, span_id: e.span_id, count, mode: count > 1 ? mode : 'once' };
  let answer;
  try {
    answer = await api('/api/replay', { method: 'POST', body: JSON.stringify(body) });
  } catch (error) {
    fill(panel, el('p', { class: 'bad' }, error.message));
    return;
  }
  if (answer.mode === 'once') {
    fill(panel, el('h3', {}, 'Replay: ', el('span', { class: 'verdict ' + answer.verdict }, answer.verdict)),
      el('p', {}, 'recorded ' + answer.recorded_status + ', replayed ' + answer.status + ' in ' + millis(answer.duration_us) + (answer.message ? ' — ' + answer.message : '')),
      answer.differences.length
        ? el('table', { class: 'diff' }, el('tr', {}, el('th', {}, 'field'), el('th', {}, 'recorded'), el('th', {}, 'replayed')),
          answer.differences.map((d) => el('tr', {}, el('td', {}, d.field), el('td', { class: 'old' }, d.recorded), el('td', { class: 'new' }, d.replayed))))
        : el('p', { class: 'muted' }, 'no differences beyond the usual noise'));
    return;
  }
  fill(panel, el('h3', {}, count + ' copies ' + (answer.mode === 'concurrent' ? 'at once (last bytes released within ' + millis(answer.release_spread_us) + ')' : 'one after another')),
    el('p', {}, answer.successes + ' succeeded, ' + answer.distinct_bodies + ' different bodies' + (answer.errors.length ? ', errors: ' + answer.errors.join('; ') : '') + ' · ',
      el('a', { id: 'round-trace', href: '#/trace/' + encodeURIComponent(session) + '/' + answer.trace_id }, 'the round as one trace')),
    sideBySide(answer.copies.map((c) => ({ label: 'copy ' + c.copy, status: c.status, body: c.body_digest, start: c.body_start })), ['status', 'body', 'start']));
}

/// Columns side by side; a cell that differs from what most columns have is highlighted (except in
/// `noisy` rows, such as durations, which always differ).
function sideBySide(columns, fields, noisy) {
  const usual = {};
  for (const field of fields) {
    const tally = new Map();
    for (const column of columns) tally.set(column[field], (tally.get(column[field]) || 0) + 1);
    usual[field] = [...tally.entries()].sort((a, b) => b[1] - a[1])[0][0];
  }
  return el('table', { class: 'side-by-side' },
    el('tr', {}, el('th', {}), columns.map((c) => el('th', {}, c.label))),
    fields.map((field) => el('tr', {}, el('th', {}, field),
      columns.map((c) => el('td', { class: c[field] !== usual[field] && columns.length > 1 && !(noisy || []).includes(field) ? 'differs' : null }, String(c[field]))))));
}

function globEscape(path) {
  return path.replace(/[\\*?[]/g, (c) => '\\' + c);
}

async function addRule(e, type, value) {
  const path = e.target.split('?')[0];
  const fault = { type };
  if (type === 'delay' || type === 'timeout') fault.ms = value;
  if (type === 'abort') fault.status = value;
  if (type === 'duplicate') { fault.count = value; fault.mode = 'concurrent'; }
  state.ruleCount += 1;
  const name = 'ui-' + type + '-' + Date.now().toString(36) + state.ruleCount;
  try {
    await api('/api/rules', { method: 'POST', body: JSON.stringify({ name, match: { method: e.method, path: globEscape(path) }, faults: [fault] }) });
    notice('Rule ' + name + ' added: ' + e.method + ' ' + path + ' → ' + type + ' ' + value);
  } catch (error) {
    notice(error.message, 'bad');
  }
}

// ---------- trace ----------

const SOURCE_NAMES = { proxy: 'proxy', otlp: 'backend', 'server-timing': 'server-timing', sql: 'database' };

function attributeValue(value) {
  if (!value) return '';
  for (const key of ['stringValue', 'boolValue', 'intValue', 'doubleValue']) if (key in value) return String(value[key]);
  return JSON.stringify(value);
}

async function showTrace(session, traceID) {
  const side = $('#side');
  let trace;
  try {
    trace = await api('/api/sessions/' + encodeURIComponent(session) + '/traces/' + traceID);
  } catch (error) {
    fill(side, el('h2', {}, 'Trace ' + traceID), el('p', { class: 'bad' }, error.message));
    return;
  }
  const spans = trace.spans.map((s) => Object.assign(s, { start: Number(s.start_unix_nano), end: Number(s.end_unix_nano) }));
  const byID = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_span_id && byID.has(s.parent_span_id) && s.parent_span_id !== s.span_id) {
      if (!children.has(s.parent_span_id)) children.set(s.parent_span_id, []);
      children.get(s.parent_span_id).push(s);
    } else {
      roots.push(s);
    }
  }
  const ordered = [];
  const visited = new Set();
  const visit = (s, depth) => {
    if (ordered.length > 5000 || visited.has(s)) return;
    visited.add(s);
    ordered.push({ span: s, depth });
    for (const child of (children.get(s.span_id) || []).sort((a, b) => a.start - b.start)) visit(child, depth + 1);
  };
  for (const root of roots.sort((a, b) => a.start - b.start)) visit(root, 0);
  const start = Math.min(...spans.map((s) => s.start));
  const end = Math.max(...spans.map((s) => s.end), start + 1);
  const attributes = el('div', { id: 'span-attributes', class: 'attributes' }, el('p', { class: 'muted' }, 'Click a span for its attributes.'));
  const rows = ordered.map(({ span, depth }) => el('div', {
    class: 'span-row src-' + span.source + (span.status_code === 2 ? ' error' : ''),
    'data-span': span.span_id,
    onclick: (event) => {
      for (const selected of side.querySelectorAll('.span-row.selected')) selected.classList.remove('selected');
      event.currentTarget.classList.add('selected');
      fill(attributes, el('h3', {}, span.name),
        el('table', { class: 'headers' },
          [['source', SOURCE_NAMES[span.source] || span.source], ['service', span.service], ['span ID', span.span_id], ['parent', span.parent_span_id || '-'],
            ['duration', millis((span.end - span.start) / 1000)], ['status', ['unset', 'ok', 'error'][span.status_code] + (span.status_message ? ': ' + span.status_message : '')]]
            .concat(span.attributes.map((a) => [a.key, attributeValue(a.value)]))
            .map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v)))));
    },
  },
  el('span', { class: 'span-name', style: 'padding-left:' + depth * 14 + 'px', title: span.name }, el('span', { class: 'badge src' }, SOURCE_NAMES[span.source] || span.source), ' ', span.name),
  el('span', { class: 'span-track' }, el('span', {
    class: 'span-bar',
    style: 'left:' + (100 * (span.start - start) / (end - start)) + '%;width:' + Math.max(0.4, 100 * (span.end - span.start) / (end - start)) + '%',
  })),
  el('span', { class: 'num' }, millis((span.end - span.start) / 1000))));
  const exchanges = trace.exchanges.slice(0, 20);
  let copies = null;
  if (exchanges.length > 1) {
    copies = [el('h3', {}, exchanges.length + ' requests in this trace, side by side: ' + exchanges[0].method + ' ' + exchanges[0].target),
      sideBySide(exchanges.map((x, i) => ({
        label: x.duplicate ? 'copy ' + x.duplicate.copy + '/' + x.duplicate.of : 'request ' + (i + 1),
        status: x.status, body: (x.response_preview || '-').slice(0, 160), size: bytes(x.response_bytes), faults: x.faults.join(' ') || '-', duration: millis(x.duration_us),
      })), ['status', 'body', 'size', 'faults', 'duration'], ['duration']),
      exchanges[0].duplicate && exchanges[0].duplicate.difference ? el('p', { class: 'dup' }, 'Difference: ' + exchanges[0].duplicate.difference) : null];
  }
  fill(side,
    el('h2', {}, 'Trace ', el('code', {}, traceID)),
    el('p', { class: 'meta' }, spans.length + ' spans over ' + millis((end - start) / 1000) + ' · ',
      Object.entries(spans.reduce((n, s) => { n[SOURCE_NAMES[s.source] || s.source] = (n[SOURCE_NAMES[s.source] || s.source] || 0) + 1; return n; }, {}))
        .map(([k, v]) => v + ' ' + k).join(', ')),
    copies,
    el('div', { id: 'waterfall', class: 'waterfall' }, rows),
    attributes);
}

// ---------- rules ----------

async function showRules() {
  const side = $('#side');
  let answer;
  try {
    answer = await api('/api/rules');
  } catch (error) {
    fill(side, el('h2', {}, 'Rules'), el('p', { class: 'bad' }, error.message));
    return;
  }
  const toggle = async (rule, on) => {
    try { await api('/api/rules/' + encodeURIComponent(rule.name) + '/' + (on ? 'enable' : 'disable'), { method: 'POST' }); } catch (error) { notice(error.message, 'bad'); }
    showRules();
  };
  const remove = async (rule) => {
    try { await api('/api/rules/' + encodeURIComponent(rule.name), { method: 'DELETE' }); } catch (error) { notice(error.message, 'bad'); }
    showRules();
  };
  fill(side,
    el('h2', {}, 'Rules'),
    el('p', { class: 'meta' }, (answer.directory ? 'From ' + answer.directory + ' (reloaded on change)' : 'No rule folder') + ', seed ' + answer.seed
      + '. Temporary rules live until the proxy stops.'),
    answer.rules.length === 0
      ? el('p', { class: 'muted' }, 'No rules. Add one from an exchange' + (answer.directory ? ', or put a rule file in ' + answer.directory : '') + '.') : null,
    el('table', { id: 'rules', class: 'rules' },
      el('tr', {}, el('th', {}, 'on'), el('th', {}, 'name'), el('th', {}, 'match'), el('th', {}, 'faults'), el('th', {}, 'matched'), el('th', {}, 'applied'), el('th', {})),
      answer.rules.map((rule) => el('tr', { 'data-rule': rule.name, class: rule.enabled ? '' : 'off' },
        el('td', {}, el('input', { type: 'checkbox', class: 'rule-toggle', checked: rule.enabled, 'aria-label': 'enable ' + rule.name, onchange: (event) => toggle(rule, event.target.checked) })),
        el('td', {}, rule.name, el('div', { class: 'muted', title: rule.file }, rule.file.split('/').pop())),
        el('td', {}, rule.match),
        el('td', {}, rule.faults.join(', ')),
        el('td', { class: 'num matched' }, rule.matched),
        el('td', { class: 'num applied' }, rule.applied),
        el('td', {}, rule.temporary ? el('button', { class: 'remove', onclick: () => remove(rule) }, 'Remove') : null)))));
}

// ---------- routing ----------

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'exchange' && parts.length === 3) return showExchange(parts[1], parts[2]);
  if (parts[0] === 'trace' && parts.length === 3) return showTrace(parts[1], parts[2]);
  if (parts[0] === 'rules') return showRules();
  state.selected = null;
  renderList(false);
  fill($('#side'), el('p', { class: 'muted' }, 'Pick an exchange to see its headers, bodies, timing and trace.'));
}

function start() {
  for (const id of ['#filter-text', '#filter-trace']) $(id).addEventListener('input', refilter);
  for (const id of ['#filter-status', '#filter-method']) $(id).addEventListener('change', refilter);
  $('#viewport').addEventListener('scroll', () => renderList(false), { passive: true });
  window.addEventListener('resize', () => renderList(false));
  $('#pause').addEventListener('click', () => {
    state.paused = !state.paused;
    $('#pause').textContent = state.paused ? 'Resume' : 'Pause';
    if (!state.paused) { const taken = state.waiting; state.waiting = []; add(taken); } else renderList(false);
  });
  $('#clear').addEventListener('click', () => { state.all = []; state.shown = []; state.waiting = []; renderList(true); });
  $('#session').addEventListener('change', (event) => switchSession(event.target.value));
  window.addEventListener('hashchange', route);
  // Up and down walk the list, as in a browser's network panel (not while typing in a field).
  document.addEventListener('keydown', (event) => {
    if ((event.key !== 'ArrowDown' && event.key !== 'ArrowUp') || event.target.closest('input, select, textarea')) return;
    const at = state.shown.findIndex((e) => e.span_id === state.selected);
    const next = state.shown[at < 0 ? 0 : Math.max(0, Math.min(state.shown.length - 1, at + (event.key === 'ArrowDown' ? 1 : -1)))];
    if (!next) return;
    event.preventDefault();
    const viewport = $('#viewport');
    const top = state.shown.indexOf(next) * ROW_HEIGHT;
    if (top < viewport.scrollTop || top + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top - viewport.clientHeight / 2;
    location.hash = '#/exchange/' + encodeURIComponent(state.session) + '/' + next.span_id;
  });
  loadSessions().then(() => { switchSession('current'); route(); });
}

document.addEventListener('DOMContentLoaded', start);
"""#
}
