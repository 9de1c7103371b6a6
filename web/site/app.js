// The MAPS policy page. Presentation only: every validation result and decision comes
// from the WebAssembly module (policy-core), and nothing is sent anywhere: the page
// reads files with the File API and its Content-Security-Policy forbids other origins.
import init, {
  validate, PolicyEngine, version, diff, importFiles, inspectImports,
} from './pkg/maps_policy.js';
import { LAND_PATH } from './world.js';

const $ = (id) => document.getElementById(id);
const ta = $('policy');
const gutter = $('gutter');
const band = $('band');
const LH = 19; // px, = --lh in style.css
const PAD = 8; // px, textarea top padding

/** The MAPS-readiness checks, by the report's codes (SPEC §6 warnings). */
const CHECKS = [
  { code: 'no-local-redundancy', title: 'Local redundancy', what: 'two links on two different routers at every edge site' },
  { code: 'no-geo-redundancy', title: 'Geo redundancy', what: 'at least two usable edge sites' },
  { code: 'ipv6-prefix', title: 'IPv4 prefixes only', what: 'Azure registers IPv4 prefixes only today' },
  { code: 'overlapping-prefix', title: 'No overlapping registrations', what: 'no prefix nested in another registration’s prefix' },
  { code: 'link-capacity', title: 'Link capacity', what: '10 Gbps or more, equal on every link' },
];
const EXTRA_CHECKS = [
  { code: 'no-eligible-prefix', title: 'Every registration has an eligible prefix' },
  { code: 'pinned-edge-drained', title: 'Pinned primary and backup edges are usable' },
  { code: 'long-prefix-without-key', title: 'Prefixes longer than /24 carry a prefix key' },
  { code: 'documentation-prefix', title: 'No documentation address ranges' },
];

const state = {
  strict: false,
  report: null, // Report shown (strict or not)
  engine: null, // PolicyEngine of the text, when it loads (non-strict, as an edge would)
  map: null, // MapData
  region: 'fit',
  selected: null, // { registration, edge, backup } of the last classified flow
  bytes: null, // an opened file's bytes, validated as such until the text is edited
  markers: '',
  whatif: false, // what-if mode on: a click on an edge drains it, on paper
  drained: [], // edge ids drained on paper, in click order
  moves: null, // WhatIf of `drained` (engine.whatIf), when any is drained
  other: null, // { name, bytes } of the policy to compare with
  imports: null, // files waiting to be imported: { files: [{name, bytes}], info, tagNames, tags }
  undo: null, // { text, bytes } of the editor before the last import
};

/** The Service Tags taken when a file is first given: the README's example
 * (`mapsctl import service-tags --tag AzureFrontDoor.FirstParty`). */
const DEFAULT_TAGS = ['AzureFrontDoor.FirstParty'];
const KIND_NAMES = { azure: 'Azure', 'service-tags': 'Service Tags', m365: 'Microsoft 365' };

// ---- editor -------------------------------------------------------------------------

function lineCount(text) {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n += 1;
  return n;
}

/** Line numbers, with the severity of each line's worst diagnostic. */
function renderGutter() {
  const n = lineCount(ta.value);
  const sev = new Map();
  for (const d of state.report?.diagnostics ?? []) {
    if (d.line == null) continue;
    if (sev.get(d.line) !== 'error') sev.set(d.line, d.severity);
  }
  const key = `${n}|${[...sev].join(',')}`;
  if (key === state.markers) return;
  state.markers = key;
  const frag = document.createDocumentFragment();
  for (let i = 1; i <= n; i += 1) {
    const div = document.createElement('div');
    div.textContent = String(i);
    const s = sev.get(i);
    if (s) div.className = s;
    frag.append(div);
  }
  gutter.replaceChildren(frag);
  syncScroll();
}

function syncScroll() {
  gutter.scrollTop = ta.scrollTop;
  if (!band.hidden) band.style.top = `${PAD + (Number(band.dataset.line) - 1) * LH - ta.scrollTop}px`;
}

function showCursor() {
  const before = ta.value.slice(0, ta.selectionStart);
  const line = lineCount(before);
  const col = [...before.slice(before.lastIndexOf('\n') + 1)].length + 1;
  $('cursor').textContent = `Ln ${line}, Col ${col}`;
}

/** UTF-16 offset of a 1-based line and 1-based column (in characters). */
function offsetOf(text, line, column) {
  let off = 0;
  for (let l = 1; l < line; l += 1) {
    const nl = text.indexOf('\n', off);
    if (nl === -1) return text.length;
    off = nl + 1;
  }
  const end = text.indexOf('\n', off) === -1 ? text.length : text.indexOf('\n', off);
  const chars = [...text.slice(off, end)];
  return off + chars.slice(0, Math.max(0, column - 1)).join('').length;
}

/** The end of the JSON token starting at `at` (a string, number or literal). */
function tokenEnd(text, at) {
  const c = text[at];
  if (c === '"') {
    for (let i = at + 1; i < text.length; i += 1) {
      if (text[i] === '\\') i += 1;
      else if (text[i] === '"') return i + 1;
      else if (text[i] === '\n') return i;
    }
    return text.length;
  }
  if (c && /[-0-9a-z]/i.test(c)) {
    let i = at;
    while (i < text.length && /[-+.0-9a-z]/i.test(text[i])) i += 1;
    return i;
  }
  return Math.min(text.length, at + 1);
}

/** Selects the value at a diagnostic's line/column and scrolls it into view. */
function jumpTo(line, column) {
  const text = ta.value;
  const start = offsetOf(text, line, column || 1);
  const end = tokenEnd(text, start);
  ta.focus({ preventScroll: true });
  ta.setSelectionRange(start, end);
  ta.scrollTop = Math.max(0, (line - 1) * LH - ta.clientHeight / 3);
  const colPx = (column - 1) * 7.5; // monospace 12.5px
  ta.scrollLeft = colPx > ta.clientWidth - 80 ? colPx - 80 : 0;
  band.dataset.line = String(line);
  band.hidden = false;
  syncScroll();
  showCursor();
}

// ---- validation --------------------------------------------------------------------

let timer = 0;
function schedule() {
  clearTimeout(timer);
  timer = setTimeout(run, 200);
}

function run() {
  const text = ta.value;
  state.engine?.free();
  state.engine = null;
  state.map = null;
  state.moves = null;
  if (!text.trim()) {
    state.report = null;
    renderAll();
    return;
  }
  const policy = state.bytes ?? text;
  state.report = validate(policy, { strict: state.strict });
  // Addresses are tested as an edge would load the policy: warnings allowed.
  const loadable = state.strict ? validate(policy).valid : state.report.valid;
  if (loadable) {
    try {
      state.engine = new PolicyEngine(policy);
      state.map = state.engine.map();
    } catch (e) {
      state.engine = null;
      console.error(e);
    }
  }
  // What was drained on paper stays drained while the edges exist.
  const ids = new Set(state.map?.edges.map((e) => e.id) ?? []);
  state.drained = state.drained.filter((id) => ids.has(id));
  computeWhatIf();
  renderAll();
}

function renderAll() {
  band.hidden = true;
  renderGutter();
  renderStatus();
  renderDiagnostics();
  renderChecklist();
  renderSummary();
  renderExamples();
  if (!state.engine) {
    state.selected = null;
    $('decision').innerHTML = '';
    $('decision').append(p(state.report ? 'Fix the errors above to test addresses against this policy.' : 'Load a valid policy, then classify a source address.', 'muted'));
  } else if ($('src').value.trim()) {
    classify();
  }
  $('test').disabled = !state.engine;
  renderMap();
  renderWhatIf();
  renderDiff();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) e.append(c);
  return e;
}
const p = (text, cls) => el('p', { class: cls }, text);
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function renderStatus() {
  const s = $('status');
  const r = state.report;
  if (!r) {
    s.dataset.state = 'empty';
    s.textContent = 'No policy yet';
  } else if (!r.valid) {
    s.dataset.state = 'invalid';
    s.textContent = `✗ ${plural(r.errors, 'error')}${r.warnings ? `, ${plural(r.warnings, 'warning')}` : ''}`;
  } else if (r.warnings) {
    s.dataset.state = 'warnings';
    s.textContent = `✓ Valid · ${plural(r.warnings, 'warning')}`;
  } else {
    s.dataset.state = 'valid';
    s.textContent = state.strict ? '✓ Valid · MAPS-ready' : '✓ Valid';
  }
}

function renderDiagnostics() {
  const body = $('diagnostics');
  const diags = state.report?.diagnostics ?? [];
  if (!diags.length) {
    body.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: 5 }, state.report ? 'No problems found.' : 'No diagnostics.')));
    return;
  }
  body.replaceChildren(...diags.map((d, i) => {
    const where = d.line != null ? `${d.line}:${d.column ?? 1}` : '';
    const jump = () => {
      for (const tr of body.querySelectorAll('tr.focus')) tr.classList.remove('focus');
      row.classList.add('focus');
      jumpTo(d.line ?? 1, d.column ?? 1);
    };
    const row = el('tr', { dataset: { code: d.code, severity: d.severity, path: d.path, index: String(i) } },
      el('td', {}, el('span', { class: `sev ${d.severity}` }, d.severity)),
      el('td', { class: 'code-name' }, d.code),
      el('td', {}, el('button', { type: 'button', class: 'path', title: d.line != null ? `Go to line ${d.line}, column ${d.column}` : 'the whole document', onclick: jump }, d.path === '' ? '/' : d.path)),
      el('td', {}, where),
      el('td', { class: 'msg' }, el('div', {}, d.message), d.help ? el('div', { class: 'help' }, d.help) : null));
    return row;
  }));
}

function renderChecklist() {
  const list = $('checklist');
  const r = state.report;
  const counts = new Map();
  for (const d of r?.diagnostics ?? []) counts.set(d.code, (counts.get(d.code) ?? 0) + 1);
  const known = Boolean(r?.summary);
  const item = (c, extra) => {
    const n = counts.get(c.code) ?? 0;
    const cls = !known ? 'unknown' : n ? `fail${r.strict ? ' strict' : ''}` : 'pass';
    const first = r?.diagnostics.find((d) => d.code === c.code);
    return el('li', { class: `${cls}${extra ? ' extra' : ''}`, dataset: { check: c.code, result: !known ? 'unknown' : n ? 'fail' : 'pass' } },
      el('span', { class: 'mark' }, !known ? '?' : n ? '!' : '✓'),
      el('div', {}, el('div', { class: 'title' }, c.title), c.what ? el('div', { class: 'what' }, c.what) : null),
      !known ? el('span', { class: 'count' }, 'not checked')
        : n ? el('button', { type: 'button', class: 'count', title: 'show the first one', onclick: () => focusCode(c.code, first) }, `${plural(n, r.strict ? 'error' : 'warning')}`)
          : el('span', { class: 'count' }, 'ok'));
  };
  list.replaceChildren(...CHECKS.map((c) => item(c, false)), el('li', { class: 'sep' }, 'Also checked'), ...EXTRA_CHECKS.map((c) => item(c, true)));
}

function focusCode(code, first) {
  const body = $('diagnostics');
  for (const tr of body.querySelectorAll('tr')) tr.classList.toggle('focus', tr.dataset.code === code);
  body.querySelector(`tr[data-code="${code}"]`)?.scrollIntoView({ block: 'nearest' });
  if (first) jumpTo(first.line ?? 1, first.column ?? 1);
}

function renderSummary() {
  const box = $('summary');
  const s = state.report?.summary;
  if (!s) {
    box.replaceChildren(p(state.report ? 'No summary yet: the document does not have the shape of a policy (see the errors below).' : 'Load a policy to see its contents.', 'muted wide'));
    return;
  }
  const card = (k, v, d, cls) => el('div', { class: `card ${cls ?? ''}` }, el('div', { class: 'k' }, k), el('div', { class: 'v' }, String(v)), d ? el('div', { class: 'd' }, d) : null);
  const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
  const eligible = new Set(state.engine ? state.engine.eligibleStates : []);
  box.replaceChildren(
    card('Edge sites', s.edges, `${s.usable_edges} usable · ${plural(s.links, 'link')}`),
    card('Registrations', s.registrations, 'Azure peering services'),
    card('Prefixes', s.prefixes, `${s.ipv4_prefixes} IPv4 · ${s.ipv6_prefixes} IPv6`),
    card('Eligible prefixes', s.eligible_prefixes, 'in an eligible state'),
    card('Telemetry', usd.format(s.telemetry_cost_usd), `${plural(s.telemetry_prefixes, 'prefix')} × $15 per prefix`, 'cost'),
    card('Destinations', s.destination_prefixes + s.destination_domains, `${plural(s.destination_prefixes, 'prefix')} · ${plural(s.destination_domains, 'domain')}`),
    el('div', { class: 'states' }, el('span', { class: 'hint' }, 'Prefix states:'),
      Object.entries(s.prefixes_by_state).map(([k, n]) => el('span', { class: `chip${eligible.has(k) ? ' eligible' : ''}`, title: eligible.has(k) ? 'eligible for MAPS' : null }, `${k} ${n}`))),
  );
}

// ---- address tester ------------------------------------------------------------------

/** A first host address inside a prefix, for the example buttons. */
function hostIn(prefix) {
  const [addr, len] = prefix.split('/');
  if (addr.includes(':')) return addr.endsWith('::') ? `${addr}1` : addr;
  const parts = addr.split('.').map(Number);
  if (parts.length !== 4 || parts.some((x) => !(x >= 0 && x <= 255))) return addr;
  if (Number(len) >= 32) return addr;
  let n = ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3] + 1;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function renderExamples() {
  const box = $('examples');
  box.replaceChildren();
  if (!state.engine) return;
  let doc;
  try { doc = JSON.parse(ta.value); } catch { return; }
  const dest = (doc.destinations ?? [])[0];
  const host = (dest?.domains ?? [])[0]?.replace(/^\*\./, 'www.') ?? null;
  const dst = (dest?.prefixes ?? [])[0] ? hostIn(dest.prefixes[0]) : null;
  // Registrations and their prefixes come from the module (JSON and packed alike).
  const regs = (state.map?.registrations ?? []).map((r) => ({ ...r, px: state.engine.prefixes(r.id, 50) }));
  const picks = [];
  const withState = (ok) => regs.filter((r) => r.px.some((x) => x.eligible === ok));
  for (const r of withState(true).slice(0, 3)) {
    const px = r.px.find((x) => x.eligible);
    picks.push({ label: `${r.customer ?? r.id} → ${host ?? dst ?? 'Microsoft'}`, src: hostIn(px.prefix), dst: host ? null : dst, host });
  }
  const un = withState(false)[0];
  if (un) {
    const px = un.px.find((x) => !x.eligible);
    picks.push({ label: `${un.customer ?? un.id} (${px.state})`, src: hostIn(px.prefix), dst: host ? null : dst, host });
  }
  const v4 = withState(true).find((r) => r.px.some((x) => !x.prefix.includes(':')));
  if (v4) picks.push({ label: 'to a non-Microsoft site', src: hostIn(v4.px.find((x) => !x.prefix.includes(':')).prefix), dst: null, host: 'www.example.org' });
  picks.push({ label: 'unregistered source', src: '192.0.2.1', dst: host ? null : dst, host });
  box.append('Try:', ...picks.map((x) => el('button', {
    type: 'button',
    title: [x.src, x.dst, x.host].filter(Boolean).join(' → '),
    onclick: () => { $('src').value = x.src; $('dst').value = x.dst ?? ''; $('host').value = x.host ?? ''; classify(); },
  }, x.label)));
}

/** Fills the tester with an address of a registration (an eligible prefix first). */
function testRegistration(id) {
  let doc;
  try { doc = JSON.parse(ta.value); } catch { return; }
  if (!state.engine) return;
  let prefixes = [];
  try { prefixes = state.engine.prefixes(id, 50); } catch { return; }
  const px = prefixes.find((x) => x.eligible) ?? prefixes[0];
  if (!px) return;
  $('src').value = hostIn(px.prefix);
  if (!$('dst').value && !$('host').value) {
    const dest = (doc.destinations ?? [])[0];
    $('host').value = (dest?.domains ?? [])[0]?.replace(/^\*\./, 'www.') ?? '';
    if (!$('host').value && dest?.prefixes?.[0]) $('dst').value = hostIn(dest.prefixes[0]);
  }
  classify();
  $('tester').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function classify() {
  const box = $('decision');
  if (!state.engine) return;
  const src = $('src').value.trim();
  const dst = $('dst').value.trim() || null;
  const host = $('host').value.trim() || null;
  if (!src) return;
  const d = state.engine.classify(src, { dst, host });
  const x = state.engine.explain(src, { dst, host });
  const map = state.map;
  const metro = (id) => map?.edges.find((e) => e.id === id)?.metro;
  const fact = (k, v, cls) => (v == null || v === '' ? null : el('div', { class: cls }, el('div', { class: 'k' }, k), el('div', { class: 'v', dataset: { field: k } }, v)));
  const edgeName = (id) => (id ? `${id}${metro(id) ? ` (${metro(id)})` : ''}` : null);
  const facts = el('div', { class: 'facts' },
    fact('registration', d.registration ? `${d.registration}${x.matched?.customer ? ` · ${x.matched.customer}` : ''}` : null),
    fact('prefix', d.prefix ? `${d.prefix}${x.matched ? ` · ${x.matched.state}` : ''}` : null),
    fact('category', d.category ?? x.category, 'category'),
    d.class === 'maps' ? [
      fact('edge', edgeName(d.edge)),
      fact('link', d.link),
      fact('backup', d.backup ? edgeName(d.backup) : 'none'),
      fact('distance', `${d.distance_km.toLocaleString('en-US')} km`),
      fact('cluster', x.cluster),
      fact('failover order', d.failover.length ? d.failover.join(' → ') : 'none', 'wide'),
    ] : null);
  const cands = x.edges.length ? el('table', { class: 'cands' },
    el('thead', {}, el('tr', {}, ['#', 'edge', 'metro', 'rank', 'distance km', 'why'].map((h) => el('th', {}, h)))),
    el('tbody', {}, x.edges.map((e) => el('tr', { class: e.position === 1 && d.class === 'maps' ? 'chosen' : e.position == null ? 'out' : null },
      el('td', { class: 'num' }, e.position ?? '–'), el('td', {}, e.edge), el('td', {}, e.metro ?? ''),
      el('td', { class: 'num' }, e.rank ?? '–'),
      el('td', { class: 'num' }, e.distance_km == null ? '–' : e.distance_km.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })),
      el('td', {}, e.why))))) : null;
  box.dataset.seq = String(Number(box.dataset.seq ?? 0) + 1);
  box.replaceChildren(
    el('div', { class: 'verdict' }, el('span', { class: `class ${d.class}`, id: 'decision-class' }, d.class), el('span', { class: 'why' }, x.why)),
    facts,
    el('div', { class: 'two' },
      el('div', {},
        el('div', { class: 'sub-h' }, 'Destination'), p(x.destination),
        cands ? [el('div', { class: 'sub-h' }, 'Candidate edges (cold potato: pinned first, then provider rank, distance, id)'), el('div', { class: 'cands-wrap' }, cands)] : null),
      el('div', {},
        el('div', { class: 'sub-h' }, 'Decision line (as mapsctl classify prints it)'),
        el('pre', { class: 'line', id: 'decision-json' }, JSON.stringify(d)),
        x.site ? [el('div', { class: 'sub-h' }, 'Customer site'), p(`${x.site.lat.toFixed(4)}, ${x.site.lon.toFixed(4)} (from ${x.site.from})`)] : null)),
    el('details', { open: true }, el('summary', {}, 'Full explanation (as mapsctl explain prints it)'), el('pre', { class: 'text', id: 'explanation' }, x.text)));
  state.selected = d.registration ? { registration: d.registration, edge: d.class === 'maps' ? d.edge : null, backup: d.class === 'maps' ? d.backup : null } : null;
  renderMap();
}

// ---- map ---------------------------------------------------------------------------

const SVGNS = 'http://www.w3.org/2000/svg';
/** Regions as [west lon, north lat, east lon, south lat]. */
const REGIONS = {
  fit: null, // the policy's edges and customers
  world: [-180, 80, 180, -58],
  americas: [-135, 62, -30, -42],
  europe: [-14, 62, 34, 33],
  apac: [60, 48, 160, -46],
};
const ASPECT = 2.4; // width / height of the map box

function s(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) e.append(c);
  return e;
}
const X = (lon) => lon + 180;
const Y = (lat) => 90 - lat;

/** The box around a policy's edges and customers, with a margin. */
function fitBox(m) {
  const pts = m ? [...m.edges, ...m.registrations] : [];
  if (!pts.length) return null;
  const lons = pts.map((q) => q.lon);
  const lats = pts.map((q) => q.lat);
  const pad = 8;
  let [w, e] = [Math.min(...lons) - pad, Math.max(...lons) + pad];
  let [so, n] = [Math.min(...lats) - pad, Math.max(...lats) + pad];
  // No closer than a region of 40 x 20 degrees.
  if (e - w < 40) { const c = (w + e) / 2; [w, e] = [c - 20, c + 20]; }
  if (n - so < 20) { const c = (n + so) / 2; [so, n] = [c - 10, c + 10]; }
  return [Math.max(-180, w), Math.min(85, n), Math.min(180, e), Math.max(-85, so)];
}

function curve(x1, y1, x2, y2, bend) {
  const mx = (x1 + x2) / 2;
  const my = (y1 + y2) / 2;
  const dx = x2 - x1;
  const dy = y2 - y1;
  return `M${x1} ${y1}Q${mx - dy * bend} ${my + dx * bend} ${x2} ${y2}`;
}

function renderMap() {
  const svg = $('map');
  const [w, n, e, so] = REGIONS[state.region] ?? fitBox(state.map) ?? REGIONS.world;
  let vw = e - w;
  let vh = n - so;
  let vx = X(w);
  let vy = Y(n);
  // Grow the box to the map's aspect so that the drawing fills it.
  if (vw / vh < ASPECT) { const nw = vh * ASPECT; vx -= (nw - vw) / 2; vw = nw; } else { const nh = vw / ASPECT; vy -= (nh - vh) / 2; vh = nh; }
  svg.setAttribute('viewBox', `${vx} ${vy} ${vw} ${vh}`);
  const px = vw / Math.max(300, svg.getBoundingClientRect().width || 1200); // one screen pixel in map units
  const grat = [];
  for (let lon = -180; lon <= 180; lon += 30) grat.push(`M${X(lon)} 0V180`);
  for (let lat = -60; lat <= 90; lat += 30) grat.push(`M0 ${Y(lat)}H360`);
  const layers = [
    s('rect', { class: 'ocean', x: -360, y: -90, width: 1080, height: 360 }),
    s('path', { class: 'grat', d: grat.join(''), 'stroke-width': 0.6, 'vector-effect': 'non-scaling-stroke' }),
    s('path', { class: 'land', d: LAND_PATH, transform: 'scale(0.1)', 'stroke-width': 0.7, 'vector-effect': 'non-scaling-stroke' }),
  ];
  const m = state.map;
  if (!m) {
    const msg = state.report ? 'The map appears when the policy has no errors.' : 'Load a policy to see its edges and customers.';
    svg.replaceChildren(...layers, s('text', { class: 'placeholder', x: vx + vw / 2, y: vy + vh / 2, 'text-anchor': 'middle', 'font-size': 15 * px, 'stroke-width': 4 * px }, msg));
    return;
  }
  const edges = new Map(m.edges.map((x) => [x.id, x]));
  // In what-if, each registration's paths as they would be with the edges drained.
  const after = new Map((state.moves?.changes ?? []).map((c) => [c.registration, c.after]));
  const drained = new Set(state.moves ? state.drained : []);
  const paths = s('g', {});
  const regs = s('g', {});
  const flows = s('g', {});
  const edgeG = s('g', {});
  for (const r0 of m.registrations) {
    const moved = after.get(r0.id);
    const r = moved ? { ...r0, primary: moved.edge, backup: moved.backup } : r0;
    const rx = X(r.lon);
    const ry = Y(r.lat);
    for (const [kind, id, bend] of [['backup', r.backup, -0.18], ['primary', r.primary, 0.12]]) {
      const ed = id && edges.get(id);
      if (!ed) continue;
      const was = kind === 'primary' ? r0.primary : r0.backup;
      paths.append(s('path', {
        class: `path ${kind}${moved && was !== id ? ' moved' : ''}`, d: curve(rx, ry, X(ed.lon), Y(ed.lat), bend), 'data-reg': r.id, 'data-edge': ed.id,
        'stroke-width': kind === 'primary' ? 1.6 : 1.2, 'stroke-dasharray': kind === 'backup' ? '4 3' : null, 'vector-effect': 'non-scaling-stroke',
      }));
    }
    const cls = ['reg', r.primary ? '' : 'noedge', r.eligible_prefixes ? '' : 'ineligible', state.selected?.registration === r.id ? 'sel' : ''].filter(Boolean).join(' ');
    const g = s('g', { class: cls, 'data-reg': r.id },
      s('title', {}, `${r.id}${r.customer ? ` · ${r.customer}` : ''}${r.location ? ` · ${r.location}` : ''}\n`
        + `primary ${r.primary ?? 'none'} · backup ${r.backup ?? 'none'}\n`
        + `${plural(r.prefixes, 'prefix')}, ${r.eligible_prefixes} eligible${r.telemetry ? ' · telemetry' : ''}`),
      s('circle', { cx: rx, cy: ry, r: 3.4 * px, 'stroke-width': 1 * px }),
      s('text', { x: rx + 6 * px, y: ry - 5 * px, 'font-size': 11 * px, 'stroke-width': 3 * px }, r.customer ?? r.id));
    g.addEventListener('click', () => testRegistration(r.id));
    g.addEventListener('mouseenter', () => hot((el2) => el2.dataset.reg === r.id, g));
    g.addEventListener('mouseleave', () => hot(null, g));
    regs.append(g);
  }
  // Edge labels: greedy placement, skipping a label that would overlap another.
  const placed = [];
  const fs = 11 * px;
  for (const ed of m.edges) {
    const x = X(ed.lon);
    const y = Y(ed.lat);
    const size = 9 * px;
    const off = !ed.usable || drained.has(ed.id);
    const g = s('g', { class: `edge${off ? ' off' : ''}${drained.has(ed.id) ? ' drained-whatif' : ''}`, 'data-edge': ed.id },
      s('title', {}, `${ed.id}${ed.metro ? ` · ${ed.metro}` : ''}${ed.provider ? ` · ${ed.provider}` : ''}\n${ed.usable_links}/${ed.links} links usable${ed.drained ? ' · drained' : ''}`),
      s('rect', { x: x - size / 2, y: y - size / 2, width: size, height: size, 'stroke-width': 1.2 * px, transform: `rotate(45 ${x} ${y})` }));
    const tw = ed.id.length * fs * 0.62;
    const spots = [[x + size, y + fs * 0.35, 'start'], [x - size, y + fs * 0.35, 'end'], [x, y - size * 0.9, 'middle'], [x, y + size + fs * 0.8, 'middle']];
    for (const [lx, ly, anchor] of spots) {
      const x0 = anchor === 'start' ? lx : anchor === 'end' ? lx - tw : lx - tw / 2;
      const box = [x0, ly - fs, x0 + tw, ly + fs * 0.2];
      if (placed.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) continue;
      placed.push(box);
      g.append(s('text', { x: lx, y: ly, 'text-anchor': anchor, 'font-size': fs, 'stroke-width': 3 * px }, ed.id));
      break;
    }
    g.addEventListener('click', () => { if (state.whatif) toggleDrain(ed.id); });
    g.addEventListener('mouseenter', () => hot((el2) => el2.dataset.edge === ed.id, null));
    g.addEventListener('mouseleave', () => hot(null, null));
    edgeG.append(g);
  }
  // The last classified flow, drawn over everything.
  const sel = state.selected;
  const reg = sel && m.registrations.find((r) => r.id === sel.registration);
  if (reg && !state.moves) {
    for (const [kind, id, bend] of [['backup', sel.backup, -0.18], ['primary', sel.edge, 0.12]]) {
      const ed = id && edges.get(id);
      if (!ed) continue;
      flows.append(s('path', {
        class: `flow ${kind}`, d: curve(X(reg.lon), Y(reg.lat), X(ed.lon), Y(ed.lat), bend),
        'stroke-width': kind === 'primary' ? 3.5 : 2.2, 'stroke-dasharray': kind === 'backup' ? '6 4' : null, 'vector-effect': 'non-scaling-stroke',
      }));
    }
  }
  svg.replaceChildren(...layers, paths, flows, edgeG, regs);

  function hot(match, regG) {
    svg.classList.toggle('dim', Boolean(match));
    for (const path of paths.children) path.classList.toggle('hot', Boolean(match && match(path)));
    for (const g of regs.children) g.classList.toggle('hot', Boolean(match && (g === regG || [...paths.children].some((pp) => pp.classList.contains('hot') && pp.dataset.reg === g.dataset.reg))));
  }
}

// ---- what-if -----------------------------------------------------------------------

/** Asks the engine what draining `state.drained` would move (nothing changes in it). */
function computeWhatIf() {
  state.moves = null;
  if (!state.engine || !state.whatif || !state.drained.length) return;
  try {
    state.moves = state.engine.whatIf({ edges: state.drained });
  } catch (e) {
    console.warn(e);
  }
}

function toggleDrain(id) {
  const i = state.drained.indexOf(id);
  if (i === -1) state.drained.push(id);
  else state.drained.splice(i, 1);
  computeWhatIf();
  renderMap();
  renderWhatIf();
}

function setWhatIf(on) {
  state.whatif = on;
  $('whatif').checked = on;
  if (!on) state.drained = [];
  computeWhatIf();
  renderMap();
  renderWhatIf();
}

const endsText = (e) => (e.edge ? `${e.edge} / ${e.backup ?? 'no backup'}` : 'default path (no edge)');
const km = (v) => (v == null ? '–' : `${v > 0 ? '+' : ''}${v.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} km`);

/** A table of route changes: registration, before → after (edge / backup), km added. */
function routeTable(changes, id) {
  const customer = new Map((state.map?.registrations ?? []).map((r) => [r.id, r.customer]));
  return el('table', { class: 'routes', id },
    el('thead', {}, el('tr', {}, ['registration', 'before (edge / backup)', '', 'after (edge / backup)', 'km added'].map((h) => el('th', {}, h)))),
    el('tbody', {}, changes.map((c) => el('tr', { dataset: { reg: c.registration, before: c.before.edge ?? '', after: c.after.edge ?? '' } },
      el('td', {}, c.registration, customer.get(c.registration) ? el('span', { class: 'muted' }, ` · ${customer.get(c.registration)}`) : null),
      el('td', {}, el('span', { class: 'ends before' }, endsText(c.before))),
      el('td', { class: 'arrow' }, '→'),
      el('td', {}, el('span', { class: `ends after${c.before.edge !== c.after.edge ? ' changed' : ''}` }, endsText(c.after))),
      el('td', { class: 'num' }, km(c.distance_added_km))))));
}

function renderWhatIf() {
  $('map').closest('.map-panel').classList.toggle('whatif', state.whatif);
  $('whatif').disabled = !state.engine;
  const list = $('whatif-list');
  const on = state.whatif && Boolean(state.engine);
  $('whatif-reset').hidden = !on || !state.drained.length;
  $('whatif-drained').textContent = !on ? '' : state.drained.length ? `drained on paper: ${state.drained.join(', ')}` : 'nothing drained yet';
  list.hidden = !on || !state.moves;
  if (list.hidden) { list.replaceChildren(); return; }
  const changes = state.moves.changes;
  list.dataset.drained = state.drained.join(',');
  list.replaceChildren(
    el('div', { class: 'sub-h' }, changes.length
      ? `Draining ${state.drained.join(', ')} would move ${plural(changes.length, 'registration')} (as mapsctl what-if reports it):`
      : `Draining ${state.drained.join(', ')} would move no registration.`),
    changes.length ? el('div', { class: 'table-wrap' }, routeTable(changes, 'whatif-table')) : null);
}

// ---- diff ----------------------------------------------------------------------------

async function openCompare(file) {
  state.other = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
  renderDiff();
  $('diff-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function renderDiff() {
  const panel = $('diff-panel');
  const box = $('diff');
  panel.hidden = !state.other;
  if (!state.other) { box.replaceChildren(); return; }
  $('diff-name').textContent = state.other.name;
  box.dataset.seq = String(Number(box.dataset.seq ?? 0) + 1);
  if (!state.engine) {
    box.replaceChildren(p('Fix the errors of the policy in the editor to compare it.', 'muted'));
    return;
  }
  let d;
  try {
    d = diff(state.bytes ?? ta.value, state.other.bytes);
  } catch (e) {
    const first = e.report?.diagnostics?.find((x) => x.severity === 'error');
    box.replaceChildren(el('p', { class: 'diff-error' }, `${state.other.name} is not a valid policy`
      + (e.report ? `: ${plural(e.report.errors, 'error')}${first ? `; first: ${first.path || '/'}: ${first.message}` : ''}` : `: ${e.message}`)));
    return;
  }
  const pfx = d.prefixes;
  const chip = (cls, text) => el('span', { class: `id ${cls}` }, text);
  const facts = (f) => `${f.state}${f.key ? ' · key' : ''}${f.telemetry ? ' · telemetry' : ''}`;
  const changedFacts = (c) => ['state', 'key', 'telemetry'].filter((k) => c.before[k] !== c.after[k])
    .map((k) => `${k}: ${c.before[k]} → ${c.after[k]}`).join(', ');
  const prefixRows = [
    ...pfx.added.map((x) => ['added', x.registration, x.prefix, facts(x)]),
    ...pfx.removed.map((x) => ['removed', x.registration, x.prefix, facts(x)]),
    ...pfx.changed.map((x) => ['changed', x.registration, x.prefix, changedFacts(x)]),
  ];
  const none = !d.registrations.added.length && !d.registrations.removed.length && !prefixRows.length && !d.routes.length;
  box.replaceChildren(el('div', { class: 'diff' },
    el('div', { class: 'counts' },
      chip('added', `${plural(d.registrations.added.length, 'registration')} added`),
      chip('removed', `${d.registrations.removed.length} removed`),
      chip('added', `${plural(pfx.added.length, 'prefix')} added`.replace('prefixs', 'prefixes')),
      chip('removed', `${pfx.removed.length} removed`),
      chip('changed', `${pfx.changed.length} changed`),
      chip('changed', `${plural(d.routes.length, 'route')} changed`)),
    none ? p('The two policies register the same prefixes and route every registration alike.', 'muted') : null,
    d.registrations.added.length || d.registrations.removed.length ? [
      el('h3', {}, 'Registrations'),
      el('div', { class: 'ids', id: 'diff-registrations' },
        d.registrations.added.map((id) => el('span', { class: 'id added', dataset: { reg: id, change: 'added' } }, `+ ${id}`)),
        d.registrations.removed.map((id) => el('span', { class: 'id removed', dataset: { reg: id, change: 'removed' } }, `− ${id}`))),
    ] : null,
    prefixRows.length ? [
      el('h3', {}, 'Prefixes'),
      el('div', { class: 'table-wrap' }, el('table', { id: 'diff-prefixes' },
        el('thead', {}, el('tr', {}, ['', 'registration', 'prefix', 'state · key · telemetry'].map((h) => el('th', {}, h)))),
        el('tbody', {}, prefixRows.map(([kind, reg, prefix, what]) => el('tr', { dataset: { change: kind, reg, prefix } },
          el('td', { class: 'kind' }, el('span', { class: kind }, kind)), el('td', {}, reg), el('td', { class: 'mono' }, prefix), el('td', { class: 'mono' }, what)))))),
    ] : null,
    d.routes.length ? [
      el('h3', {}, 'Routes that change (registrations in both)'),
      el('div', { class: 'table-wrap' }, routeTable(d.routes, 'diff-routes')),
    ] : null));
}

// ---- imports (mapsctl import, SPEC §8) ------------------------------------------------

/** Adds files to those waiting to be imported (a file of the same name is replaced),
 * after asking the module what each one is. A file it cannot tell is refused with its
 * name (and where it broke), and the others stay. */
async function addImportFiles(list) {
  const added = await Promise.all([...list].map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
  if (!added.length) return;
  const files = [...(state.imports?.files ?? []).filter((f) => !added.some((a) => a.name === f.name)), ...added];
  let info;
  try {
    info = inspectImports(files.map((f) => ({ name: f.name, text: f.bytes })));
  } catch (e) {
    showImportError(e);
    return;
  }
  const tagNames = info.find((i) => i.kind === 'service-tags')?.tags ?? [];
  const names = new Set(tagNames);
  const before = (state.imports?.tags ?? []).filter((t) => names.has(t));
  state.imports = { files, info, tagNames, tags: before.length ? before : DEFAULT_TAGS.filter((t) => names.has(t)) };
  $('import-result').replaceChildren();
  renderImportPending();
  $('import-run').focus();
}

function renderImportPending() {
  const im = state.imports;
  $('import-pending').hidden = !im;
  if (!im) return;
  const kinds = new Set(im.info.map((i) => i.kind));
  $('import-files').replaceChildren(...im.info.map((i) => el('li', { dataset: { kind: i.kind, name: i.name } },
    el('span', { class: 'kind' }, KIND_NAMES[i.kind]), i.name,
    i.tags ? el('span', { class: 'muted' }, ` · ${plural(i.tags.length, 'tag')}`) : null)));
  $('import-azure-note').hidden = !kinds.has('azure');
  $('import-m365').hidden = !kinds.has('m365');
  $('import-tags').hidden = !kinds.has('service-tags');
  if (kinds.has('service-tags')) {
    $('import-tag-count').textContent = `(${im.tags.length} of the file's ${im.tagNames.length})`;
    $('import-tag-chips').replaceChildren(...im.tags.map((t) => el('span', { class: 'chip-tag', dataset: { tag: t } }, t,
      el('button', { type: 'button', title: `leave ${t} out`, 'aria-label': `Remove ${t}`, onclick: () => { im.tags = im.tags.filter((x) => x !== t); renderImportPending(); } }, '×'))));
    const list = $('import-tag-list');
    if (list.dataset.for !== String(im.tagNames.length)) {
      list.replaceChildren(...im.tagNames.map((t) => el('option', { value: t })));
      list.dataset.for = String(im.tagNames.length);
    }
  }
  $('import-run').disabled = kinds.has('service-tags') && !im.tags.length;
}

/** Adds the tag typed (a name of the file, in any case). */
function addTag() {
  const im = state.imports;
  const input = $('import-tag-input');
  const typed = input.value.trim();
  if (!im || !typed) return;
  const name = im.tagNames.find((t) => t === typed) ?? im.tagNames.find((t) => t.toLowerCase() === typed.toLowerCase());
  if (!name) {
    input.setCustomValidity(`no tag ${typed} in the file`);
    input.reportValidity();
    return;
  }
  input.setCustomValidity('');
  if (!im.tags.includes(name)) im.tags.push(name);
  input.value = '';
  renderImportPending();
}

/** Imports the waiting files into the policy in the editor; the editor, and so the
 * report, map and tester, then show the updated policy. */
function runImport() {
  const im = state.imports;
  if (!im) return;
  if (!ta.value.trim()) {
    showImportError(new Error('Load or paste the policy to update first: an import updates the policy in the editor.'));
    return;
  }
  const categories = [...$('import-m365').querySelectorAll('input[name="category"]:checked')].map((i) => i.value);
  let r;
  try {
    r = importFiles(state.bytes ?? ta.value, im.files.map((f) => ({ name: f.name, text: f.bytes })), {
      tags: im.tags,
      categories,
      requiredOnly: $('import-required-only').checked,
      policyName: 'the policy in the editor',
    });
  } catch (e) {
    showImportError(e);
    return;
  }
  state.undo = { text: ta.value, bytes: state.bytes };
  state.imports = null;
  renderImportPending();
  loadText(r.policy);
  showImportReport(r, im.files.map((f) => f.name));
}

function showImportReport(r, names) {
  const v = r.validation;
  const kinds = [...new Set(r.kinds)].map((k) => KIND_NAMES[k]).join(', ');
  const box = $('import-result');
  box.dataset.state = 'done';
  box.replaceChildren(
    el('div', { class: 'import-done' },
      `Imported ${plural(names.length, 'file')} (${kinds}) into the policy: valid, ${plural(v.warnings, 'warning')}.`,
      el('button', { type: 'button', class: 'btn', id: 'import-undo', onclick: undoImport }, 'Undo')),
    el('ul', { class: 'import-report', id: 'import-report' }, r.report.map((sec) => el('li', { dataset: { kind: sec.kind } },
      sec.text, sec.items.length ? el('ul', {}, sec.items.map((i) => el('li', {}, i))) : null))));
}

function undoImport() {
  const u = state.undo;
  if (!u) return;
  state.undo = null;
  ta.value = u.text;
  state.bytes = u.bytes;
  run();
  const box = $('import-result');
  box.dataset.state = 'undone';
  box.replaceChildren(p('The import was undone: the editor holds the policy as it was.', 'muted'));
}

/** An import refused: the file and the JSON Pointer when the module names them, or the
 * updated policy's errors. */
function showImportError(e) {
  const box = $('import-result');
  box.dataset.state = 'error';
  const parts = [el('div', { class: 'msg' }, e.message ?? String(e))];
  if (e.name === 'ImportError' && e.file != null) {
    parts.push(el('div', { class: 'where', dataset: { file: e.file, pointer: e.pointer ?? '' } },
      `file ${e.file}${e.pointer != null ? ` · at ${e.pointer === '' ? '/' : e.pointer}` : ''}`));
  }
  if (e.name === 'PolicyError' && e.report) {
    const errors = e.report.diagnostics.filter((d) => d.severity === 'error');
    parts.push(el('ul', {}, errors.slice(0, 8).map((d) => el('li', { dataset: { code: d.code } }, `${d.path || '/'}: ${d.message} (${d.code})`))));
  }
  box.replaceChildren(el('div', { class: 'import-error', role: 'alert', dataset: { name: e.name ?? 'Error' } }, parts));
}

// ---- wiring ------------------------------------------------------------------------

async function loadText(text) {
  state.bytes = null;
  ta.value = text;
  ta.scrollTop = 0;
  run();
}

/** Loads a file: validated as its bytes (so a file that is not UTF-8 says so) until
 * the text is edited; the editor shows it decoded. */
async function loadFile(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  ta.value = new TextDecoder('utf-8').decode(bytes);
  ta.scrollTop = 0;
  state.bytes = bytes;
  run();
}

async function main() {
  await init();
  $('version').textContent = `policy-core wasm ${version()}`;
  ta.addEventListener('input', () => { state.bytes = null; band.hidden = true; renderGutter(); schedule(); });
  ta.addEventListener('scroll', syncScroll);
  for (const ev of ['keyup', 'click', 'select', 'input']) ta.addEventListener(ev, showCursor);
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Tab' && !e.shiftKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      document.execCommand('insertText', false, '  ');
    }
  });
  $('strict').addEventListener('change', (e) => { state.strict = e.target.checked; run(); });
  $('demo').addEventListener('click', async () => {
    const res = await fetch('demo-policy.json');
    await loadText(await res.text());
  });
  $('format').addEventListener('click', () => {
    try { loadText(`${JSON.stringify(JSON.parse(ta.value), null, 2)}\n`); } catch { /* not JSON: the report says where */ }
  });
  $('file').addEventListener('change', async (e) => {
    const f = e.target.files?.[0];
    if (f) await loadFile(f);
    e.target.value = '';
  });
  const ed = $('editor');
  ed.addEventListener('dragover', (e) => { e.preventDefault(); ed.classList.add('drop'); });
  ed.addEventListener('dragleave', () => ed.classList.remove('drop'));
  ed.addEventListener('drop', async (e) => {
    e.preventDefault();
    ed.classList.remove('drop');
    const f = e.dataTransfer?.files?.[0];
    if (f) await loadFile(f);
  });
  $('whatif').addEventListener('change', (e) => setWhatIf(e.target.checked));
  $('whatif-reset').addEventListener('click', () => { state.drained = []; computeWhatIf(); renderMap(); renderWhatIf(); });
  $('compare-file').addEventListener('change', async (e) => {
    const f = e.target.files?.[0];
    if (f) await openCompare(f);
    e.target.value = '';
  });
  $('diff-close').addEventListener('click', () => { state.other = null; renderDiff(); });
  $('import-file').addEventListener('change', async (e) => {
    await addImportFiles(e.target.files ?? []);
    e.target.value = '';
  });
  const dz = $('dropzone');
  dz.addEventListener('dragover', (e) => { e.preventDefault(); dz.classList.add('drop'); });
  dz.addEventListener('dragleave', () => dz.classList.remove('drop'));
  dz.addEventListener('drop', async (e) => {
    e.preventDefault();
    dz.classList.remove('drop');
    await addImportFiles(e.dataTransfer?.files ?? []);
  });
  $('import-run').addEventListener('click', runImport);
  $('import-clear').addEventListener('click', () => { state.imports = null; renderImportPending(); $('import-result').replaceChildren(); });
  $('import-tag-add').addEventListener('click', addTag);
  $('import-tag-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); addTag(); } });
  $('import-tag-input').addEventListener('input', (e) => e.target.setCustomValidity(''));
  $('tester').addEventListener('submit', (e) => { e.preventDefault(); classify(); });
  for (const b of $('zoom').querySelectorAll('button')) {
    b.addEventListener('click', () => {
      state.region = b.dataset.region;
      for (const o of $('zoom').querySelectorAll('button')) o.classList.toggle('on', o === b);
      renderMap();
    });
  }
  let rt = 0;
  window.addEventListener('resize', () => { clearTimeout(rt); rt = setTimeout(renderMap, 150); });
  renderAll();
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  document.body.dataset.ready = 'error';
  $('status').dataset.state = 'invalid';
  $('status').textContent = `could not start the validator: ${e.message ?? e}`;
  console.error(e);
});
