// distlog ui: search, request trees as waterfalls, live tail, metrics.
//
// Every string that comes from a record is untrusted. It reaches the page
// through `textContent` and `title` (via `el` and `setAttribute`) only:
// this file never assigns `innerHTML`, `outerHTML` or uses
// `insertAdjacentHTML`, `document.write` or `eval`.
'use strict';

const $ = (id) => document.getElementById(id);

/** A new element with a class and text (as text, never as markup). */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** The JSON values of an NDJSON response, as they arrive. */
async function* ndjson(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) yield JSON.parse(line);
    }
  }
  if (buf.trim()) yield JSON.parse(buf);
}

/** An error body's message, whatever the response. */
async function errorOf(resp) {
  try { return await resp.json(); } catch (_) { return { error: resp.status + ' ' + resp.statusText }; }
}

// ---- tabs ---------------------------------------------------------------

function showTab(name) {
  for (const s of document.querySelectorAll('section.tab')) s.hidden = s.id !== name;
  for (const b of document.querySelectorAll('.tab-button')) b.classList.toggle('active', b.dataset.tab === name);
  if (name === 'glance') startGlance();
  if (name === 'live' && !live.ctl) startLive();
}

// ---- records (search and live tail) -------------------------------------

function levelClass(no) {
  if (no >= 40) return 'lvl-error';
  if (no >= 30) return 'lvl-warn';
  return 'lvl-info';
}

/** The root task id of a task path. */
function rootOf(task) { return String(task).split('/')[0]; }

/** One record as a list item: its text line; a click shows every field. */
function recordItem(msg) {
  const rec = msg.record || {};
  const li = el('li', levelClass(rec.levelno));
  const line = el('span', 'line', msg.text);
  li.append(line);
  if (rec.task) {
    const b = el('button', 'task-link', 'tree');
    b.type = 'button';
    b.title = 'open the tree of ' + rootOf(rec.task);
    b.addEventListener('click', () => openTree(rootOf(rec.task)));
    li.append(b);
  }
  line.addEventListener('click', () => {
    const open = li.querySelector('.detail');
    if (open) { open.remove(); return; }
    li.append(el('pre', 'detail', JSON.stringify(rec, null, 2)));
  });
  return li;
}

// ---- search -------------------------------------------------------------

let searchCtl = null;

/** Shows a filter error with a caret under its position. */
function showFilterError(box, src, e) {
  box.hidden = false;
  if (!e.line || !e.column) { box.textContent = e.error; return; }
  const lines = String(src).split('\n');
  const at = lines[e.line - 1] || '';
  box.textContent = e.error + '\n' + at + '\n' + ' '.repeat(Math.max(0, e.column - 1)) + '^ ' + e.message;
}

async function runSearch() {
  if (searchCtl) searchCtl.abort();
  const ctl = new AbortController();
  searchCtl = ctl;
  const results = $('results'), status = $('search-status'), errBox = $('filter-error');
  results.replaceChildren();
  results.dataset.done = '';
  errBox.hidden = true;
  const q = new URLSearchParams();
  const filter = $('filter').value;
  // The filter as typed (its error's column is then the input's column).
  if (filter.trim()) q.set('filter', filter);
  for (const [k, v] of [['since', $('since').value], ['until', $('until').value], ['limit', $('limit').value]]) {
    if (v.trim()) q.set(k, v.trim());
  }
  status.textContent = 'searching...';
  const t0 = performance.now();
  let first = null, n = 0;
  try {
    const resp = await fetch('/api/search?' + q, { signal: ctl.signal });
    if (!resp.ok) {
      const e = await errorOf(resp);
      showFilterError(errBox, filter, e);
      status.textContent = '';
      results.dataset.done = 'error';
      return;
    }
    let batch = document.createDocumentFragment();
    for await (const msg of ndjson(resp)) {
      if (msg.text !== undefined) {
        if (first === null) {
          first = performance.now() - t0;
          window.distlogSearchFirstMs = first;
        }
        batch.append(recordItem(msg));
        n++;
        if (n % 200 === 0) { results.append(batch); batch = document.createDocumentFragment(); status.textContent = n + ' records so far...'; }
      } else if (msg.done) {
        results.append(batch);
        const all = performance.now() - t0;
        status.textContent = msg.count + ' records' + (msg.capped ? ' (the limit: narrow the filter or raise it)' : '') +
          (first !== null ? '; first after ' + first.toFixed(0) + ' ms' : '') + ', all after ' + all.toFixed(0) + ' ms' +
          (msg.skipped ? '; ' + msg.skipped + ' unreadable batches skipped' : '');
        results.dataset.done = 'ok';
      } else if (msg.error) {
        results.append(batch);
        status.textContent = 'search failed: ' + msg.error;
        results.dataset.done = 'error';
      }
    }
    results.append(batch);
  } catch (e) {
    if (e.name !== 'AbortError') { status.textContent = 'search failed: ' + e; results.dataset.done = 'error'; }
  }
}

// ---- the tree as a waterfall --------------------------------------------

const collapsed = new Set();

async function openTree(id) {
  const started = performance.now();
  showTab('tree');
  $('task').value = id;
  history.replaceState(null, '', '#tree=' + encodeURIComponent(id));
  const status = $('tree-status'), wf = $('waterfall');
  wf.replaceChildren();
  wf.dataset.done = '';
  status.textContent = 'loading...';
  const resp = await fetch('/api/tree?task=' + encodeURIComponent(id));
  if (!resp.ok) {
    status.textContent = (await errorOf(resp)).error;
    wf.dataset.done = 'error';
    return;
  }
  const tasks = [];
  for await (const t of ndjson(resp)) tasks.push(t);
  collapsed.clear();
  const t0 = performance.now();
  renderWaterfall(wf, tasks);
  const ms = performance.now() - t0;
  window.distlogTreeRenderMs = ms;
  window.distlogTreeLoadMs = performance.now() - started;
  const records = tasks.reduce((a, t) => a + t.records.length, 0);
  const failed = tasks.filter((t) => t.status === 'failed').length;
  status.textContent = tasks.length + ' tasks, ' + records + ' records' + (failed ? ', ' + failed + ' failed' : '') +
    ' (drawn in ' + ms.toFixed(0) + ' ms)';
  wf.dataset.done = 'ok';
}

function fmtDuration(ms) {
  if (ms < 1) return (ms * 1000).toFixed(0) + 'µs';
  if (ms < 1000) return ms.toFixed(1) + 'ms';
  return (ms / 1000).toFixed(2) + 's';
}

const STATUS_TEXT = { succeeded: 'ok', failed: 'FAILED', running: 'unfinished', missing: 'no records' };

function renderWaterfall(wf, tasks) {
  // Times in ms since the epoch (doubles: sub-microsecond is enough here).
  const ms = (ns) => (ns === null || ns === undefined ? null : ns / 1e6);
  const recMs = (r) => (r.time_ns !== undefined ? r.time_ns / 1e6 : r.created * 1e3);
  // Each task's span: from its start (or first record below it) to its end
  // (or, unfinished, the last record below it); children widen parents.
  const last = new Map();
  for (let i = tasks.length - 1; i >= 0; i--) {
    const t = tasks[i];
    let m = ms(t.end_ns) ?? -Infinity;
    for (const r of t.records) m = Math.max(m, recMs(r));
    for (const c of t.subtasks) if (last.has(c)) m = Math.max(m, last.get(c));
    last.set(t.task, m);
  }
  let lo = Infinity, hi = -Infinity;
  for (const t of tasks) {
    const s = ms(t.start_ns) ?? ms(t.first_ns);
    if (s !== null) lo = Math.min(lo, s);
    const e = last.get(t.task);
    if (e > -Infinity) hi = Math.max(hi, e);
  }
  if (!(hi > lo)) hi = lo + 1;
  const pct = (x) => ((x - lo) / (hi - lo)) * 100;

  const frag = document.createDocumentFragment();
  const axis = el('div', 'wf-row wf-axis');
  axis.append(el('div', 'wf-label', 'task'));
  axis.append(el('div', 'wf-track', '0 ... ' + fmtDuration(hi - lo)));
  frag.append(axis);
  for (const t of tasks) {
    const row = el('div', 'wf-row task-row status-' + t.status);
    row.dataset.task = t.task;
    row.dataset.depth = t.depth;
    row.dataset.status = t.status;
    const label = el('div', 'wf-label');
    label.style.paddingLeft = (t.depth * 16) + 'px';
    const toggle = el('button', 'wf-toggle', t.subtasks.length ? '▾' : '');
    toggle.type = 'button';
    if (t.subtasks.length) toggle.addEventListener('click', () => toggleTask(t.task, toggle));
    label.append(toggle);
    label.append(el('span', 'wf-name', t.label));
    label.append(el('span', 'wf-badge', STATUS_TEXT[t.status] || t.status));
    let msg = t.message;
    if (t.status === 'missing') msg = '(known only from its subtasks: no record of it arrived)';
    else if (t.start_missing) msg = '(start record missing) ' + (t.records[0] ? t.records[0].message : '');
    label.append(el('span', 'wf-msg', msg));
    if (t.hostname !== null) label.append(el('span', 'wf-proc', t.hostname + '/' + t.processName + ' pid ' + t.process));
    if (t.duration_ns !== null) label.append(el('span', 'wf-proc', fmtDuration(t.duration_ns / 1e6)));
    if (t.error) label.append(el('span', 'wf-gap', 'error: ' + t.error));
    for (const [a, b] of t.missing_records) {
      label.append(el('span', 'wf-gap', a === b ? 'record ' + a + ' missing' : 'records ' + a + '..' + b + ' missing'));
    }
    row.title = t.task;
    row.append(label);

    const track = el('div', 'wf-track');
    const s = ms(t.start_ns) ?? ms(t.first_ns);
    const e = t.end_ns !== null ? ms(t.end_ns) : last.get(t.task);
    if (s !== null && e > -Infinity) {
      const bar = el('div', 'wf-bar' + (t.end_ns === null ? ' unfinished' : ''));
      bar.style.left = pct(s) + '%';
      bar.style.width = Math.max(0, pct(e) - pct(s)) + '%';
      track.append(bar);
    }
    for (const r of t.records) {
      const m = el('div', 'wf-mark ' + levelClass(r.levelno));
      m.style.left = pct(recMs(r)) + '%';
      m.setAttribute('title', r.levelname + ' ' + r.message);
      track.append(m);
    }
    row.append(track);
    frag.append(row);
    for (const k of t.missing_subtasks) {
      const gap = el('div', 'wf-row wf-gap-row');
      gap.dataset.task = t.task + '/' + k;
      const gl = el('div', 'wf-label', 'subtask ' + (t.label === t.task ? '' : t.label) + '/' + k + ': no record arrived');
      gl.style.paddingLeft = ((t.depth + 1) * 16 + 24) + 'px';
      gap.append(gl, el('div', 'wf-track'));
      frag.append(gap);
    }
  }
  wf.replaceChildren(frag);
}

function toggleTask(task, button) {
  if (collapsed.has(task)) collapsed.delete(task); else collapsed.add(task);
  button.textContent = collapsed.has(task) ? '▸' : '▾';
  applyCollapse();
}

function applyCollapse() {
  const prefixes = [...collapsed].map((t) => t + '/');
  for (const row of document.querySelectorAll('#waterfall .wf-row[data-task]')) {
    const task = row.dataset.task;
    row.hidden = prefixes.some((p) => task.startsWith(p));
  }
}

// ---- live tail ----------------------------------------------------------

/** Records kept on the page, and held while paused. */
const LIVE_SHOWN = 2000, LIVE_HELD = 5000;
const live = { ctl: null, paused: false, held: [], skipped: 0, lagged: 0, broker: '' };

function liveStatus() {
  const s = $('live-status');
  let text = live.broker ? 'following ' + live.broker : 'connecting...';
  if (live.paused) text += ' (paused: ' + live.held.length + ' held';
  if (live.paused) text += live.skipped ? ', ' + live.skipped + ' skipped: the hold is full)' : ')';
  else if (live.skipped) text += '; ' + live.skipped + ' records skipped while paused';
  if (live.lagged) text += '; ' + live.lagged + ' batches skipped (the page fell behind)';
  s.textContent = text;
}

function showLive(msg) {
  const list = $('live-records');
  list.append(recordItem(msg));
  while (list.childElementCount > LIVE_SHOWN) list.firstElementChild.remove();
}

async function startLive() {
  if (live.ctl) live.ctl.abort();
  const ctl = new AbortController();
  Object.assign(live, { ctl, held: [], skipped: 0, lagged: 0, broker: '' });
  // A new filter starts a new list.
  $('live-records').replaceChildren();
  const status = $('live-status');
  status.dataset.state = 'connecting';
  const q = new URLSearchParams();
  const filter = $('live-filter').value;
  if (filter.trim()) q.set('filter', filter);
  try {
    const resp = await fetch('/api/tail?' + q, { signal: ctl.signal });
    if (!resp.ok) {
      const e = await errorOf(resp);
      status.textContent = e.error;
      status.dataset.state = 'error';
      live.ctl = null;
      return;
    }
    for await (const msg of ndjson(resp)) {
      if (msg.hello) {
        live.broker = msg.broker + (msg.connected ? '' : ' (waiting for the broker)');
        status.dataset.state = 'open';
      } else if (msg.skipped_batches) {
        live.lagged += msg.skipped_batches;
      } else if (msg.text !== undefined) {
        if (!live.paused) showLive(msg);
        else if (live.held.length < LIVE_HELD) live.held.push(msg);
        else live.skipped++;
      }
      liveStatus();
    }
    status.dataset.state = 'closed';
  } catch (e) {
    if (e.name !== 'AbortError') { status.textContent = 'live tail stopped: ' + e; status.dataset.state = 'error'; }
  }
}

function togglePause() {
  live.paused = !live.paused;
  $('live-pause').textContent = live.paused ? 'Resume' : 'Pause';
  if (!live.paused) {
    for (const m of live.held) showLive(m);
    live.held = [];
  }
  liveStatus();
}

// ---- at a glance --------------------------------------------------------

let glanceTimer = null;
const previous = new Map();

async function pollGlance() {
  const status = $('glance-status');
  let data;
  try {
    const resp = await fetch('/api/metrics');
    data = await resp.json();
    if (!resp.ok) { status.textContent = data.error; return; }
  } catch (e) { status.textContent = 'cannot read metrics: ' + e; return; }
  const now = performance.now();
  status.textContent = 'broker metrics from ' + data.broker + ', every 2 s';
  const body = document.querySelector('#glance-table tbody');
  const frag = document.createDocumentFragment();
  for (const [name, labels, value] of data.samples) {
    const key = name + '{' + labels + '}';
    const prev = previous.get(key);
    const rate = prev ? ((value - prev.value) / ((now - prev.at) / 1000)) : null;
    previous.set(key, { value, at: now });
    const tr = el('tr', /drop|reject|fail|error/.test(name) && value > 0 ? 'alarm' : '');
    tr.append(el('td', '', name), el('td', '', labels), el('td', '', value),
      el('td', '', rate === null || !/_total$|_count$/.test(name) ? '' : rate.toFixed(1)));
    frag.append(tr);
  }
  body.replaceChildren(frag);
}

function startGlance() {
  if (glanceTimer) return;
  pollGlance();
  glanceTimer = setInterval(pollGlance, 2000);
}

// ---- wiring -------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('.tab-button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('search-form').addEventListener('submit', (e) => { e.preventDefault(); runSearch(); });
  $('tree-form').addEventListener('submit', (e) => { e.preventDefault(); openTree($('task').value.trim()); });
  $('tree-expand').addEventListener('click', () => {
    collapsed.clear();
    for (const b of document.querySelectorAll('#waterfall .wf-toggle')) if (b.textContent) b.textContent = '▾';
    applyCollapse();
  });
  $('live-form').addEventListener('submit', (e) => { e.preventDefault(); startLive(); });
  $('live-pause').addEventListener('click', togglePause);
  $('live-clear').addEventListener('click', () => $('live-records').replaceChildren());
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith('tree=')) openTree(hash.slice(5));
  else showTab(hash === 'live' || hash === 'glance' ? hash : 'search');
});
