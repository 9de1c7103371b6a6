// The page (target/web, built by `make web-site`) in headless Debian Chromium, driven
// by playwright-core: paste an invalid policy, check the diagnostics shown against the
// golden report, fix it through the diagnostics' jump links, test an address and
// check the decision shown against the Node package. Screenshots go to target/web-test/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';
import { launch } from './browser.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SITE = join(ROOT, 'target/web');
const SHOTS = join(ROOT, 'target/web-test');
const fixture = (...p) => readFileSync(join(ROOT, 'fixtures', ...p), 'utf8');
const maps = createRequire(import.meta.url)(join(ROOT, 'packages/maps-policy-node'));

let site;
let chromium;
let page;
const requests = [];
const problems = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  site = await serve(SITE);
  chromium = await launch({ width: 1440, height: 900 });
  page = await chromium.context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  await page.goto(site.url);
  await page.waitForSelector('body[data-ready="true"]');
});

after(async () => {
  await chromium?.close();
  await site?.close();
});

/** The diagnostics table as shown. */
const shownDiagnostics = () => page.$$eval('#diagnostics tr[data-code]', (rows) => rows.map((r) => ({
  severity: r.querySelector('.sev').textContent,
  code: r.dataset.code,
  path: r.querySelector('.path').textContent,
  where: r.children[3].textContent,
  message: r.querySelector('.msg div').textContent,
})));

/** Replaces the editor's text as a paste would (one text insertion). */
async function paste(text) {
  await page.focus('#policy');
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
}

/** Fills the address tester, classifies, and waits for that decision to be shown. */
async function classifyIn({ src, dst, host }) {
  const seq = Number((await page.getAttribute('#decision', 'data-seq')) ?? 0);
  await page.fill('#src', src);
  await page.fill('#dst', dst ?? '');
  await page.fill('#host', host ?? '');
  await page.click('#test');
  await page.waitForFunction((n) => Number(document.getElementById('decision').dataset.seq ?? 0) > n, seq);
}

const waitStatus = (state) => page.waitForSelector(`#status[data-state="${state}"]`);

test('the page says that nothing leaves the browser', async () => {
  assert.match(await page.textContent('#privacy'), /entirely in your browser.*never uploaded/);
  const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /connect-src 'self'/);
});

test('an invalid policy, pasted, shows its golden diagnostics; jumping and fixing makes it valid', async () => {
  const text = fixture('invalid', 'unknown-fields.json');
  const golden = JSON.parse(fixture('invalid', 'unknown-fields.golden.json'));
  await paste(text);
  await waitStatus('invalid');
  assert.equal(await page.textContent('#status'), `✗ ${golden.errors} errors`);
  assert.deepEqual(await shownDiagnostics(), golden.diagnostics.map((d) => ({
    severity: d.severity, code: d.code, path: d.path, where: `${d.line}:${d.column}`, message: d.message,
  })));
  await page.screenshot({ path: join(SHOTS, 'invalid.png'), fullPage: true });
  // Every misspelt key marked in the gutter.
  const marked = await page.$$eval('#gutter div.error', (ds) => ds.map((d) => Number(d.textContent)));
  assert.deepEqual(marked, golden.diagnostics.map((d) => d.line));
  // The tester waits for a valid policy.
  assert.equal(await page.isDisabled('#test'), true);

  // Fix each one where the jump link puts the cursor: the diagnostic's key is selected.
  const fixes = {
    '/provdier': '"provider"',
    '/edges/0/lattitude': ['Shift+End', '"drained": false'],
    '/edges/1/links/0/routr': '"router"',
    '/registrations/0/primary': '"primary_edge"',
    '/registrations/0/prefixes/0/telemtry': '"telemetry"',
    '/options/eligible_state': '"eligible_states"',
  };
  let left = golden.diagnostics.length;
  for (const d of golden.diagnostics) {
    await page.click(`#diagnostics tr[data-path="${d.path}"] .path`);
    const sel = await page.$eval('#policy', (t) => t.value.slice(t.selectionStart, t.selectionEnd));
    assert.equal(sel, `"${d.path.split('/').pop()}"`, `jump to ${d.path} selects its key`);
    assert.equal(await page.textContent('#cursor'), `Ln ${d.line}, Col ${d.column}`);
    const fix = fixes[d.path];
    const [keys, replacement] = Array.isArray(fix) ? fix : [null, fix];
    if (keys) await page.keyboard.press(keys);
    await page.keyboard.insertText(replacement);
    left -= 1;
    await page.waitForFunction((n) => document.querySelectorAll('#diagnostics tr[data-severity="error"]').length === n, left);
  }
  await page.waitForSelector('#status[data-state="valid"], #status[data-state="warnings"]');
  const fixed = await page.inputValue('#policy');
  const report = maps.validate(fixed);
  assert.equal(report.valid, true);
  // What the page shows is the module's report.
  assert.deepEqual((await shownDiagnostics()).map((d) => `${d.code} ${d.path}`), report.diagnostics.map((d) => `${d.code} ${d.path}`));

  // Test an address in the fixed policy.
  await classifyIn({ src: '20.1.2.3' });
  const engine = new maps.PolicyEngine(fixed);
  const want = engine.classify('20.1.2.3', {});
  engine.free();
  assert.equal(want.class, 'maps');
  assert.equal(want.edge, 'sea');
  assert.equal(await page.textContent('#decision-class'), 'maps');
  assert.deepEqual(JSON.parse(await page.textContent('#decision-json')), want);
  assert.equal(await page.textContent('[data-field="edge"]'), 'sea (Seattle)');
  assert.equal(await page.textContent('[data-field="backup"]'), 'chi (Chicago)');
  assert.match(await page.textContent('#explanation'), /^decision: maps\nwhy: +sea is the registration's pinned primary edge and is usable/);
  // The flow is drawn on the map: primary to sea, backup to chi.
  assert.equal(await page.locator('#map path.flow.primary').count(), 1);
  assert.equal(await page.locator('#map path.flow.backup').count(), 1);
  await page.screenshot({ path: join(SHOTS, 'fixed.png'), fullPage: true });
});

test('opening files: the report is that of the file bytes', async () => {
  for (const name of ['not-utf8', 'duplicates']) {
    const golden = JSON.parse(fixture('invalid', `${name}.golden.json`));
    await page.setInputFiles('#file', join(ROOT, 'fixtures/invalid', `${name}.json`));
    await page.waitForFunction((codes) => [...document.querySelectorAll('#diagnostics tr[data-code]')].map((r) => r.dataset.code).join() === codes,
      golden.diagnostics.map((d) => d.code).join());
    assert.deepEqual(await shownDiagnostics(), golden.diagnostics.map((d) => ({
      severity: d.severity, code: d.code, path: d.path === '' ? '/' : d.path, where: `${d.line}:${d.column}`, message: d.message,
    })), name);
  }
});

test('the demo policy: readiness checklist, summary, decisions, map', async () => {
  await page.click('#demo');
  await waitStatus('warnings');
  const demo = fixture('demo', 'policy.json');
  const report = maps.validate(demo);
  assert.equal(await page.inputValue('#policy'), demo);
  assert.equal(await page.locator('#diagnostics tr[data-code]').count(), report.diagnostics.length);
  // Checklist: each item fails exactly when the report carries its code.
  const codes = new Set(report.diagnostics.map((d) => d.code));
  const items = await page.$$eval('#checklist li[data-check]', (lis) => lis.map((li) => [li.dataset.check, li.dataset.result]));
  assert.deepEqual(items.slice(0, 5).map(([c]) => c), ['no-local-redundancy', 'no-geo-redundancy', 'ipv6-prefix', 'overlapping-prefix', 'link-capacity']);
  for (const [code, result] of items) assert.equal(result, codes.has(code) ? 'fail' : 'pass', code);
  assert.ok(items.some(([, r]) => r === 'fail'), 'the demo shows readiness warnings');
  // Summary: the telemetry cost.
  const s = report.summary;
  const cost = await page.textContent('.card.cost');
  assert.ok(cost.includes(`$${s.telemetry_cost_usd.toLocaleString('en-US')}`), cost);
  assert.ok(cost.includes(`${s.telemetry_prefixes} prefix`), cost);
  // Strict mode turns the readiness warnings into errors.
  await page.check('#strict');
  await waitStatus('invalid');
  assert.equal(await page.locator('#diagnostics tr[data-severity="warning"]').count(), 0);
  assert.equal(await page.locator('#diagnostics tr[data-severity="error"]').count(), report.diagnostics.length);
  await page.uncheck('#strict');
  await waitStatus('warnings');

  // Every scenario line of the demo trace, through the page, gives its golden decision.
  const trace = fixture('demo', 'trace.jsonl').split('\n').filter((l) => l.trim());
  const golden = fixture('demo', 'decisions.golden.jsonl').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  let checked = 0;
  for (const [i, line] of trace.entries()) {
    if ('error' in golden[i]) continue;
    const t = JSON.parse(line);
    // The form needs a source (an empty one is `invalid-source`; the Node tests cover it).
    if (t.src.trim() === '') continue;
    await classifyIn(t);
    const shown = JSON.parse(await page.textContent('#decision-json'));
    assert.deepEqual(shown, golden[i], `trace line ${i + 1}: ${line}`);
    assert.equal(await page.textContent('#decision-class'), golden[i].class);
    checked += 1;
  }
  assert.equal(checked, golden.filter((g) => !('error' in g) && g.src.trim() !== '').length);

  // The map: every edge and registration drawn, each registration's primary and backup.
  const engine = new maps.PolicyEngine(demo);
  const m = engine.map();
  engine.free();
  assert.equal(await page.locator('#map g.edge').count(), m.edges.length);
  assert.equal(await page.locator('#map g.reg').count(), m.registrations.length);
  assert.equal(await page.locator('#map path.path.primary').count(), m.registrations.filter((r) => r.primary).length);
  assert.equal(await page.locator('#map path.path.backup').count(), m.registrations.filter((r) => r.backup).length);
  await classifyIn({ src: '20.33.1.10', host: 'outlook.office365.com' });
  await page.screenshot({ path: join(SHOTS, 'demo.png'), fullPage: true });
  await page.click('#zoom button[data-region="europe"]');
  await page.locator('.map-panel').screenshot({ path: join(SHOTS, 'map-europe.png') });
});

// Regression: the map showed 0 prefixes for a packed policy, and the example buttons
// and a click on a registration found no address for it (they read the JSON prefixes).
test('a packed policy: the map counts its prefixes and a registration fills the tester', async () => {
  await page.setInputFiles('#file', join(ROOT, 'fixtures/packed', 'policy.json'));
  await page.waitForFunction(() => document.querySelector('#policy').value.includes('"prefix_table"'));
  await waitStatus('warnings');
  const titles = await page.$$eval('#map g.reg title', (ts) => ts.map((t) => t.textContent));
  const demo = new maps.PolicyEngine(fixture('demo', 'policy.json'));
  const want = demo.map().registrations;
  demo.free();
  assert.equal(titles.length, want.length);
  for (const [i, r] of want.entries()) {
    assert.ok(r.prefixes > 0, r.id);
    assert.ok(titles[i].includes(`${r.prefixes} prefix`), `${r.id}: ${titles[i]}`);
  }
  assert.ok(await page.locator('#examples button').count() >= 3);
  // (The map may be zoomed elsewhere: the click is dispatched, not aimed.)
  await page.dispatchEvent('#map g.reg[data-reg="fabrikam-wa"]', 'click');
  const src = await page.inputValue('#src');
  assert.ok(src.startsWith('20.33.'), src);
});

test('what-if: draining sea on the demo, on paper, moves fabrikam-wa to sjc in the list and on the map', async () => {
  await page.click('#demo');
  await waitStatus('warnings');
  await page.click('#zoom button[data-region="fit"]');
  const demo = fixture('demo', 'policy.json');
  const engine = new maps.PolicyEngine(demo);
  const want = engine.whatIf({ edges: ['sea'] }).changes;
  const before = engine.map();
  engine.free();
  assert.ok(want.some((c) => c.registration === 'fabrikam-wa' && c.before.edge === 'sea' && c.after.edge === 'sjc'));
  // Off: a click on an edge drains nothing.
  await page.dispatchEvent('#map g.edge[data-edge="sea"]', 'click');
  assert.equal(await page.isHidden('#whatif-list'), true);
  await page.check('#whatif');
  await page.dispatchEvent('#map g.edge[data-edge="sea"]', 'click');
  await page.waitForSelector('#whatif-table tr[data-reg="fabrikam-wa"]');
  const rows = await page.$$eval('#whatif-table tbody tr', (trs) => trs.map((tr) => ({
    registration: tr.dataset.reg, before: tr.dataset.before, after: tr.dataset.after, km: tr.lastChild.textContent,
  })));
  assert.deepEqual(rows.map((r) => r.registration), want.map((c) => c.registration));
  for (const [i, c] of want.entries()) {
    assert.equal(rows[i].before, c.before.edge ?? '');
    assert.equal(rows[i].after, c.after.edge ?? '');
    if (c.distance_added_km != null) assert.match(rows[i].km, new RegExp(`${c.distance_added_km.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} km$`));
  }
  const fab = rows.find((r) => r.registration === 'fabrikam-wa');
  assert.deepEqual([fab.before, fab.after], ['sea', 'sjc']);
  assert.match(await page.textContent('#whatif-table tr[data-reg="fabrikam-wa"]'), /sea \/ .*→sjc \//);
  // The map: sea drained on paper, fabrikam-wa's primary path now to sjc, marked moved.
  assert.equal(await page.locator('#map g.edge.drained-whatif[data-edge="sea"]').count(), 1);
  assert.equal(await page.getAttribute('#map path.path.primary[data-reg="fabrikam-wa"]', 'data-edge'), 'sjc');
  assert.match(await page.getAttribute('#map path.path.primary[data-reg="fabrikam-wa"]', 'class'), /\bmoved\b/);
  assert.equal(await page.locator('#map path.path.primary').count(), before.registrations.filter((r) => (want.find((c) => c.registration === r.id)?.after.edge ?? r.primary)).length);
  await page.locator('.map-panel').screenshot({ path: join(SHOTS, 'whatif-sea.png') });
  // The policy itself is untouched, and the tester still routes to sea.
  assert.equal(await page.inputValue('#policy'), demo);
  await classifyIn({ src: '20.33.1.10', host: 'outlook.office365.com' });
  assert.equal(JSON.parse(await page.textContent('#decision-json')).edge, 'sea');
  // Reset: nothing drained, every path as before.
  await page.click('#whatif-reset');
  await page.waitForSelector('#whatif-list', { state: 'hidden' });
  assert.equal(await page.locator('#map g.edge.drained-whatif').count(), 0);
  assert.equal(await page.getAttribute('#map path.path.primary[data-reg="fabrikam-wa"]', 'data-edge'), 'sea');
  // A second click on a drained edge undrains it too.
  await page.dispatchEvent('#map g.edge[data-edge="nyc"]', 'click');
  await page.waitForSelector('#whatif-table tr[data-reg="proseware-ny"]');
  await page.dispatchEvent('#map g.edge[data-edge="nyc"]', 'click');
  await page.waitForSelector('#whatif-list', { state: 'hidden' });
  await page.uncheck('#whatif');
});

test('compare with…: the demo against fixtures/diff/new-policy.json lists what changes', async () => {
  await page.click('#demo');
  await waitStatus('warnings');
  const want = maps.diff(fixture('demo', 'policy.json'), fixture('diff', 'new-policy.json'));
  await page.setInputFiles('#compare-file', join(ROOT, 'fixtures/diff', 'new-policy.json'));
  await page.waitForSelector('#diff-registrations');
  assert.equal(await page.textContent('#diff-name'), 'new-policy.json');
  const regs = await page.$$eval('#diff-registrations [data-reg]', (xs) => xs.map((x) => `${x.dataset.change} ${x.dataset.reg}`));
  assert.deepEqual(regs, ['added fabrikam-or', 'removed consolidated-mx']);
  const prefixes = await page.$$eval('#diff-prefixes tbody tr', (trs) => trs.map((tr) => `${tr.dataset.change} ${tr.dataset.reg} ${tr.dataset.prefix}`));
  assert.deepEqual(prefixes, [
    ...want.prefixes.added.map((x) => `added ${x.registration} ${x.prefix}`),
    ...want.prefixes.removed.map((x) => `removed ${x.registration} ${x.prefix}`),
    ...want.prefixes.changed.map((x) => `changed ${x.registration} ${x.prefix}`),
  ]);
  assert.ok(prefixes.includes('added fabrikam-or 20.40.0.0/20'));
  const routes = await page.$$eval('#diff-routes tbody tr', (trs) => trs.map((tr) => `${tr.dataset.reg} ${tr.dataset.before}→${tr.dataset.after}`));
  assert.deepEqual(routes, want.routes.map((c) => `${c.registration} ${c.before.edge}→${c.after.edge}`));
  assert.deepEqual(routes, ['wingtip-tx dfw→chi']);
  await page.locator('#diff-panel').screenshot({ path: join(SHOTS, 'diff.png') });
  // An invalid policy to compare with says so; Close hides the view.
  await page.setInputFiles('#compare-file', join(ROOT, 'fixtures/invalid', 'unknown-fields.json'));
  await page.waitForSelector('#diff .diff-error');
  assert.match(await page.textContent('#diff .diff-error'), /^unknown-fields\.json is not a valid policy: \d+ errors; first: /);
  await page.click('#diff-close');
  await page.waitForSelector('#diff-panel', { state: 'hidden' });
});

test('categories (fixtures/categories): each decision shows its Microsoft 365 category; excluded-category is styled', async () => {
  await page.setInputFiles('#file', join(ROOT, 'fixtures/categories', 'policy.json'));
  await page.waitForFunction(() => document.querySelector('#policy').value.includes('maps_categories'));
  await page.waitForSelector('#status[data-state="valid"], #status[data-state="warnings"]');
  const trace = fixture('categories', 'trace.jsonl').split('\n').filter((l) => l.trim());
  const golden = fixture('categories', 'decisions.golden.jsonl').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const classes = new Set();
  let shot = false;
  for (const [i, line] of trace.entries()) {
    if ('error' in golden[i]) continue;
    const t = JSON.parse(line);
    if (t.src.trim() === '') continue;
    await classifyIn(t);
    assert.deepEqual(JSON.parse(await page.textContent('#decision-json')), golden[i], `trace line ${i + 1}: ${line}`);
    const cls = await page.textContent('#decision-class');
    assert.equal(cls, golden[i].class);
    const shown = await page.locator('[data-field="category"]').count() ? await page.textContent('[data-field="category"]') : null;
    assert.equal(shown, golden[i].category ?? null, `trace line ${i + 1}: category`);
    classes.add(cls);
    if (cls === 'excluded-category') {
      const bg = await page.$eval('#decision-class', (e) => getComputedStyle(e).backgroundColor);
      assert.equal(bg, 'rgb(122, 79, 176)');
      if (!shot) {
        shot = true;
        await page.locator('.tester-panel').screenshot({ path: join(SHOTS, 'excluded-category.png') });
      }
    }
    if (cls === 'maps') assert.match(await page.textContent('[data-field="cluster"]'), /^maps_/);
  }
  assert.ok(classes.has('excluded-category') && classes.has('maps'), [...classes].join());
  assert.ok(golden.some((g) => g.category === 'Optimize') && golden.some((g) => g.category === 'Allow'));
});

// ---- imports: the files a user drops, as `mapsctl import` takes them ----------------------

const IMPORTS = join(ROOT, 'fixtures/imports');
/** A CLI golden (made from the repository root) as the page shows it: the page knows
 * a file by its name only, and calls the policy "the policy in the editor". */
const asShown = (text) => text.replaceAll('fixtures/imports/azure/', '').replaceAll('fixtures/imports/', '');
const goldenPolicy = (stem) => {
  const doc = JSON.parse(fixture('imports', `${stem}.golden.json`));
  for (const pr of doc.provenance ?? []) pr.files = pr.files.map(asShown);
  return doc;
};
/** The CLI's report less its `wrote ...` line. */
const goldenReport = (stem) => asShown(fixture('imports', `${stem}.golden.txt`).replace(/[^\n]*\n$/, ''));
/** The report as shown: each line, its items indented by two spaces (mapsctl's form). */
const shownReport = () => page.$$eval('#import-report > li', (lis) => lis.map((li) => `${li.firstChild.textContent}\n${
  [...li.querySelectorAll('li')].map((i) => `  ${i.textContent}\n`).join('')}`).join(''));

async function openBase() {
  await page.setInputFiles('#file', join(IMPORTS, 'base-policy.json'));
  await page.waitForFunction(() => document.querySelector('#policy').value.includes('peering_location'));
  await waitStatus('warnings');
}

async function importNow() {
  await page.click('#import-run');
  await page.waitForSelector('#import-result[data-state="done"], #import-result[data-state="error"]');
}

test('import: the Azure files onto the base policy give the CLI golden policy and report; the page refreshes; nothing is fetched', async () => {
  await openBase();
  const base = fixture('imports', 'base-policy.json');
  const asked = requests.length;
  await page.setInputFiles('#import-file', ['peering-services.json', 'prefixes.json', 'lamna-co.json'].map((f) => join(IMPORTS, 'azure', f)));
  await page.waitForSelector('#import-pending', { state: 'visible' });
  assert.deepEqual(await page.$$eval('#import-files li', (lis) => lis.map((li) => `${li.dataset.kind} ${li.dataset.name}`)),
    ['azure peering-services.json', 'azure prefixes.json', 'azure lamna-co.json']);
  assert.equal(await page.isVisible('#import-azure-note'), true);
  assert.equal(await page.isVisible('#import-tags'), false);
  await importNow();
  assert.equal(await page.getAttribute('#import-result', 'data-state'), 'done');
  assert.deepEqual(JSON.parse(await page.inputValue('#policy')), goldenPolicy('azure'));
  assert.equal(await shownReport(), goldenReport('azure'));
  assert.match(await page.textContent('.import-done'), /^Imported 3 files \(Azure\) into the policy: valid, 1 warning\./);
  // The text is the one the module writes (checked against the CLI goldens by node).
  const want = maps.importFiles(base, ['peering-services.json', 'prefixes.json', 'lamna-co.json']
    .map((f) => ({ name: f, text: readFileSync(join(IMPORTS, 'azure', f)) })), { policyName: 'the policy in the editor' });
  assert.equal(await page.inputValue('#policy'), want.policy);
  // Validation, the map and the tester follow the updated policy.
  await waitStatus('warnings');
  await page.waitForSelector('#map [data-reg="lamna-co"]');
  assert.equal(await page.locator('#map [data-reg="margie-fl"]').count(), 0);
  assert.equal(await page.inputValue('#policy'), want.policy);
  await classifyIn({ src: '40.112.8.1', host: 'outlook.office365.com' });
  assert.equal(JSON.parse(await page.textContent('#decision-json')).registration, 'wingtip-tx');
  assert.equal(await page.isVisible('#import-pending'), false);
  await page.locator('.import-panel').screenshot({ path: join(SHOTS, 'import-azure.png') });
  // The files were read in the page: nothing was asked of any server.
  assert.deepEqual(requests.slice(asked), []);
  // Undo puts the policy back.
  await page.click('#import-undo');
  await page.waitForSelector('#import-result[data-state="undone"]');
  assert.equal(await page.inputValue('#policy'), base);
});

test('import: the Service Tags file offers its tags (AzureFrontDoor.FirstParty first); the chosen ones give the CLI golden', async () => {
  await openBase();
  const asked = requests.length;
  await page.setInputFiles('#import-file', join(IMPORTS, 'ServiceTags_Public_20250728.json'));
  await page.waitForSelector('#import-tags', { state: 'visible' });
  assert.deepEqual(await page.$$eval('#import-tag-chips [data-tag]', (xs) => xs.map((x) => x.dataset.tag)), ['AzureFrontDoor.FirstParty']);
  assert.equal(await page.textContent('#import-tag-count'), "(1 of the file's 2967)");
  assert.equal(await page.locator('#import-tag-list option').count(), 2967);
  assert.equal(await page.getAttribute('#import-files li', 'data-kind'), 'service-tags');
  // A tag typed in another case is the file's; one the file lacks is refused.
  await page.fill('#import-tag-input', 'azureactivedirectory');
  await page.press('#import-tag-input', 'Enter');
  await page.fill('#import-tag-input', 'NoSuchTag');
  await page.click('#import-tag-add');
  assert.deepEqual(await page.$$eval('#import-tag-chips [data-tag]', (xs) => xs.map((x) => x.dataset.tag)),
    ['AzureFrontDoor.FirstParty', 'AzureActiveDirectory']);
  await importNow();
  assert.deepEqual(JSON.parse(await page.inputValue('#policy')), goldenPolicy('service-tags'));
  assert.equal(await shownReport(), goldenReport('service-tags'));
  await waitStatus('warnings');
  assert.deepEqual(requests.slice(asked), []);
});

test('import: the Microsoft 365 endpoints with the default categories (Optimize, Allow) give the CLI golden', async () => {
  await openBase();
  await page.setInputFiles('#import-file', join(IMPORTS, 'm365-endpoints-worldwide.2024.json'));
  await page.waitForSelector('#import-m365', { state: 'visible' });
  assert.deepEqual(await page.$$eval('#import-m365 input[name="category"]:checked', (xs) => xs.map((x) => x.value)), ['Optimize', 'Allow']);
  await importNow();
  assert.deepEqual(JSON.parse(await page.inputValue('#policy')), goldenPolicy('m365'));
  assert.equal(await shownReport(), goldenReport('m365'));
  await waitStatus('warnings');
  // The tester sees the new categories: Exchange Online (Optimize) from a registered source.
  await classifyIn({ src: '20.33.0.5', host: 'outlook.office365.com' });
  assert.equal(await page.textContent('[data-field="category"]'), 'Optimize');
});

test('import: a damaged file shows the error with its file and JSON Pointer; the policy is unchanged', async () => {
  await openBase();
  const before = await page.inputValue('#policy');
  const v = JSON.parse(fixture('imports', 'azure', 'prefixes.json'));
  v.value[3].properties.prefix = 42;
  // Files given one after the other wait together.
  await page.setInputFiles('#import-file', join(IMPORTS, 'azure', 'peering-services.json'));
  await page.waitForSelector('#import-pending', { state: 'visible' });
  await page.setInputFiles('#import-file', { name: 'prefixes.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(v, null, 2)) });
  await page.waitForFunction(() => document.querySelectorAll('#import-files li').length === 2);
  await importNow();
  assert.equal(await page.getAttribute('#import-result', 'data-state'), 'error');
  assert.equal(await page.getAttribute('.import-error .where', 'data-file'), 'prefixes.json');
  assert.equal(await page.getAttribute('.import-error .where', 'data-pointer'), '/value/3/properties/prefix');
  assert.equal(await page.textContent('.import-error .where'), 'file prefixes.json · at /value/3/properties/prefix');
  assert.equal(await page.textContent('.import-error .msg'), 'prefixes.json: at /value/3/properties/prefix: expected a string, found a number');
  assert.equal(await page.inputValue('#policy'), before);
  await page.locator('.import-panel').screenshot({ path: join(SHOTS, 'import-error.png') });
  // A file cut short is refused as soon as it is given, with line and column; the
  // files waiting stay as they were.
  const cut = fixture('imports', 'azure', 'lamna-co.json').slice(0, 200);
  await page.setInputFiles('#import-file', { name: 'cut.json', mimeType: 'application/json', buffer: Buffer.from(cut) });
  await page.waitForSelector('#import-result[data-state="error"] .where[data-file="cut.json"]');
  assert.equal(await page.getAttribute('.import-error .where', 'data-pointer'), '');
  assert.match(await page.textContent('.import-error .msg'), /^cut\.json:\d+:\d+: at \/: not JSON/);
  assert.equal(await page.locator('#import-files li').count(), 2);
  // The published examples import, but the policy they make would not validate: refused.
  await page.click('#import-clear');
  await page.setInputFiles('#import-file', join(IMPORTS, 'azure-examples', 'peering-service.json'));
  await importNow();
  assert.equal(await page.getAttribute('.import-error', 'data-name'), 'ImportError');
  assert.match(await page.textContent('.import-error .msg'), /no peering service of Contoso Networks \(the provider of the policy in the editor\)/);
  assert.equal(await page.inputValue('#policy'), before);
  await page.click('#import-clear');
});

test('the page asked nothing of any other origin and logged no error', () => {
  const foreign = requests.filter((u) => !u.startsWith(site.url) && !u.startsWith('data:'));
  assert.deepEqual(foreign, []);
  assert.deepEqual(problems, []);
});
