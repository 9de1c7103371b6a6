// The Node package (packages/maps-policy-node, built by `make web-pkg`) against the
// shared fixtures: the scenario traces give their golden decisions (the native
// core's), and the invalid policies give their golden reports.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = join(ROOT, 'fixtures');
const PKG = join(ROOT, 'packages/maps-policy-node');
const require = createRequire(import.meta.url);
// Loaded by its package name's entry point, as a user would (`main`/`exports`).
const pkgJson = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8'));
const maps = require(PKG);
const { validate, PolicyEngine, version, diff } = maps;

const read = (...p) => readFileSync(join(FIXTURES, ...p));
const readText = (...p) => readFileSync(join(FIXTURES, ...p), 'utf8');
const jsonLines = (text) => text.split('\n').filter((l) => l.trim() !== '');
// A trace's lines as every reader numbers them (SPEC §5): blank lines are lines (each
// gets an error line); a final newline does not start another line.
const traceLines = (text) => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

const scenarios = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(FIXTURES, d.name, 'trace.jsonl')))
  .map((d) => d.name)
  .sort();

describe('package', () => {
  test('package.json names files that exist, and its version is the module version', () => {
    assert.equal(pkgJson.version, version());
    for (const f of pkgJson.files) assert.ok(existsSync(join(PKG, f)), `${f} listed in files but missing`);
    assert.ok(existsSync(join(PKG, pkgJson.types)));
    assert.ok(existsSync(join(PKG, pkgJson.exports['.'].default)));
    assert.ok(existsSync(join(PKG, pkgJson.exports['.'].types)));
  });

  test('the typings of both packages declare every export and no `any`', () => {
    for (const dir of [PKG, join(ROOT, 'packages/maps-policy-web')]) {
      const types = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).types;
      checkTypings(readFileSync(join(dir, types), 'utf8'));
    }
  });

  function checkTypings(dts) {
    for (const name of ['export function validate(policy: string | Uint8Array, options?: ValidateOptions): Report;',
      'constructor(policy: string | Uint8Array, options?: ValidateOptions);',
      'classify(src: string, flow?: FlowOptions): Decision;',
      'classifyTrace(traceText: string): string;',
      'explain(src: string, flow?: FlowOptions): Explanation;',
      'edges(registrationId: string): Candidate[];',
      'map(): MapData;',
      'prefixes(registrationId: string, limit?: number | null): PrefixMatch[];',
      'readonly eligibleStates: PrefixState[];',
      'readonly headers: HeaderNames;',
      'readonly report: Report;',
      'readonly summary: Summary;',
      'whatIf(drain?: WhatIfOptions): WhatIf;',
      'export function diff(oldPolicy: string | Uint8Array, newPolicy: string | Uint8Array): PolicyDiff;',
      'export function importFiles(policy: string | Uint8Array, files: ImportInput[], options?: ImportOptions): ImportResult;',
      'export function inspectImports(files: ImportInput[]): ImportFileInfo[];']) {
      assert.ok(dts.includes(name), `missing in .d.ts: ${name}`);
    }
    // `InitOutput` (web target only) types the raw wasm exports, whose externref
    // arguments are any JS value by nature; the API itself has no `any`.
    const code = dts.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
      .replace(/export interface InitOutput \{[\s\S]*?\n\}/, '');
    assert.doesNotMatch(code, /\bany\b/);
  }

  test('the typings compile under tsc --strict, and misuse is a type error (test/types/check.ts)', () => {
    const tsc = require.resolve('typescript/bin/tsc');
    const config = fileURLToPath(new URL('./types/tsconfig.json', import.meta.url));
    const run = spawnSync(process.execPath, [tsc, '-p', config], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, `tsc failed:\n${run.stdout}${run.stderr}`);
  });
});

describe('scenario traces: same decisions as native', () => {
  assert.ok(scenarios.includes('demo'));
  for (const dir of scenarios) {
    const engine = new PolicyEngine(read(dir, 'policy.json'));
    const trace = readText(dir, 'trace.jsonl');
    const golden = readText(dir, 'decisions.golden.jsonl');

    test(`${dir}: classifyTrace gives the golden decision lines, byte for byte`, () => {
      assert.equal(engine.classifyTrace(trace), golden);
    });

    test(`${dir}: classify(src, {dst, host}) gives each golden decision`, () => {
      const lines = traceLines(trace);
      const want = jsonLines(golden).map((l) => JSON.parse(l));
      assert.equal(lines.length, want.length);
      let checked = 0;
      lines.forEach((line, i) => {
        if ('error' in want[i]) return; // a malformed trace line: covered above
        const t = JSON.parse(line);
        const got = engine.classify(t.src, { dst: t.dst, host: t.host });
        assert.deepEqual(got, want[i], `trace line ${i + 1}: ${line}`);
        checked += 1;
      });
      assert.ok(checked > 0);
    });
  }

  test('classifyTrace gives blank, whitespace-only and over-long lines their own error line', () => {
    const engine = new PolicyEngine(read('demo', 'policy.json'));
    const long = `{"src": "${'1'.repeat(70000)}"}`;
    const trace = ['{"src": "20.33.1.1"}', '', '   ', '\t\r', long, '{"src": "20.33.1.2"}'].join('\n') + '\n';
    const out = traceLines(engine.classifyTrace(trace)).map((l) => JSON.parse(l));
    assert.equal(out.length, 6);
    assert.equal(out[0].src, '20.33.1.1');
    for (const i of [1, 2, 3]) {
      assert.equal(out[i].line, i + 1);
      assert.match(out[i].error, /blank/);
    }
    assert.equal(out[4].line, 5);
    assert.match(out[4].error, /longer than 65536 bytes/);
    assert.equal(out[5].src, '20.33.1.2');
  });

  test('the scenario traces cover every class', () => {
    const classes = new Set();
    for (const dir of scenarios) {
      for (const l of jsonLines(readText(dir, 'decisions.golden.jsonl'))) {
        const d = JSON.parse(l);
        if (d.class) classes.add(d.class);
      }
    }
    assert.deepEqual([...classes].sort(), ['excluded-category', 'invalid-source', 'maps', 'no-edge', 'non-microsoft', 'unregistered', 'unverified']);
  });
});

describe('invalid fixtures: same diagnostics as native', () => {
  const invalid = readdirSync(join(FIXTURES, 'invalid'))
    .filter((f) => f.endsWith('.json') && !f.endsWith('.golden.json'))
    .sort();
  assert.ok(invalid.length >= 10);

  for (const f of invalid) {
    const base = f.replace(/\.json$/, '');
    const bytes = read('invalid', f);
    const golden = JSON.parse(readText('invalid', `${base}.golden.json`));

    test(`${base}: validate(bytes) is the golden report`, () => {
      assert.deepEqual(validate(bytes), golden);
    });

    if (Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes)) {
      test(`${base}: validate(text) is the golden report too`, () => {
        assert.deepEqual(validate(bytes.toString('utf8')), golden);
      });
    }

    const strictPath = join(FIXTURES, 'invalid', `${base}.strict.golden.json`);
    if (existsSync(strictPath)) {
      test(`${base}: validate(bytes, {strict: true}) is the strict golden report`, () => {
        assert.deepEqual(validate(bytes, { strict: true }), JSON.parse(readFileSync(strictPath, 'utf8')));
      });
    }

    if (!golden.valid) {
      test(`${base}: new PolicyEngine throws a PolicyError carrying the golden report`, () => {
        assert.throws(() => new PolicyEngine(bytes), (err) => {
          assert.ok(err instanceof Error);
          assert.equal(err.name, 'PolicyError');
          assert.match(err.message, new RegExp(`^invalid policy: ${golden.errors} errors?; first: error\\[${golden.diagnostics.find((d) => d.severity === 'error').code}\\]`));
          assert.deepEqual(err.report, golden);
          return true;
        });
      });
    }
  }

  test('strict mode refuses a policy with readiness warnings', () => {
    const bytes = read('invalid', 'not-maps-ready.json');
    assert.doesNotThrow(() => new PolicyEngine(bytes).free());
    assert.throws(() => new PolicyEngine(bytes, { strict: true }), (e) => e.name === 'PolicyError' && e.report.strict === true);
  });
});

describe('engine API', () => {
  const text = readText('demo', 'policy.json');
  const doc = JSON.parse(text);
  const engine = new PolicyEngine(text);

  test('report and summary are those of validate()', () => {
    const report = validate(text);
    assert.deepEqual(engine.report, report);
    assert.deepEqual(engine.summary, report.summary);
    assert.equal(engine.summary.telemetry_cost_usd, engine.summary.telemetry_prefixes * 15);
  });

  test('edges(registration) lists the candidates in decision order with distances', () => {
    for (const line of jsonLines(readText('demo', 'decisions.golden.jsonl')).map((l) => JSON.parse(l))) {
      if (line.class !== 'maps') continue;
      const cands = engine.edges(line.registration);
      assert.deepEqual(cands.map((c) => c.edge), [line.edge, ...line.failover]);
      assert.equal(Math.round(cands[0].distance_km * 10) / 10, line.distance_km);
      for (const c of cands) {
        assert.deepEqual(Object.keys(c).filter((k) => !['metro', 'provider'].includes(k)), ['edge', 'index', 'rank', 'distance_km', 'reason']);
        assert.equal(doc.edges[c.index].id, c.edge);
        assert.ok(['pinned-primary', 'pinned-backup', 'nearest'].includes(c.reason));
      }
      for (let i = 1; i < cands.length; i += 1) {
        const [a, b] = [cands[i - 1], cands[i]];
        if (a.reason === 'nearest' && b.reason === 'nearest' && a.rank === b.rank) assert.ok(a.distance_km <= b.distance_km);
      }
    }
    assert.throws(() => engine.edges('no-such-registration'), /unknown registration `no-such-registration`/);
  });

  test('explain() carries the decision, every edge, and the printed text', () => {
    const x = engine.explain('20.33.1.10', { host: 'outlook.office365.com' });
    const d = engine.classify('20.33.1.10', { host: 'outlook.office365.com' });
    assert.deepEqual(Object.keys(x).sort(), ['address', 'also_inside', 'backup', 'category', 'class', 'cluster', 'destination', 'dst', 'edge', 'edges', 'eligible_states', 'failover', 'host', 'link', 'matched', 'site', 'src', 'text', 'why'].sort());
    assert.equal(x.class, d.class);
    assert.equal(x.edge, d.edge);
    assert.equal(x.link, d.link);
    assert.equal(x.cluster, engine.map().registrations.find((r) => r.id === d.registration).cluster);
    assert.ok(x.cluster.startsWith('maps_'));
    assert.deepEqual(x.failover, d.failover);
    assert.equal(x.edges.length, doc.edges.length);
    assert.equal(x.edges[0].position, 1);
    assert.equal(x.matched.prefix, d.prefix);
    assert.deepEqual(Object.keys(x.site).sort(), ['from', 'lat', 'lon']);
    assert.equal(typeof x.site.lat, 'number');
    assert.match(x.text, /^decision: maps\nwhy: /);
    const none = engine.explain('not-an-address');
    assert.equal(none.class, 'invalid-source');
    assert.equal(none.address, null);
    assert.equal(none.matched, null);
  });

  test('map() gives every edge and registration with coordinates, primary and backup', () => {
    const m = engine.map();
    assert.deepEqual(m.edges.map((e) => e.id), doc.edges.map((e) => e.id));
    assert.deepEqual(m.registrations.map((r) => r.id), doc.registrations.map((r) => r.id));
    for (const r of m.registrations) {
      assert.ok(Math.abs(r.lat) <= 90 && Math.abs(r.lon) <= 180);
      const cands = engine.edges(r.id);
      assert.equal(r.primary, cands[0]?.edge ?? null);
      assert.equal(r.backup, cands[1]?.edge ?? null);
    }
    for (const e of m.edges) assert.equal(e.usable, !e.drained && e.usable_links > 0);
  });

  // Regression: the map showed 0 prefixes for a packed policy, and explain() said "no
  // registered prefix contains it" for a source that classifies maps.
  test('a packed policy (fixtures/packed) shows every view exactly as its JSON form', () => {
    const packed = new PolicyEngine(read('packed', 'policy.json'));
    const sortP = (xs) => [...xs].sort((a, b) => a.prefix.localeCompare(b.prefix));
    assert.deepEqual(packed.map(), engine.map());
    assert.ok(packed.map().registrations.some((r) => r.prefixes > 0));
    for (const r of engine.map().registrations) {
      assert.equal(r.prefixes, doc.registrations.find((x) => x.id === r.id).prefixes.length, r.id);
      assert.deepEqual(sortP(packed.prefixes(r.id, 1000)), sortP(engine.prefixes(r.id, 1000)), r.id);
    }
    for (const src of ['20.33.1.10', '52.160.42.1', '20.33.16.5', '2603:10a0:400::10', '198.18.0.1']) {
      const flow = { host: 'outlook.office365.com' };
      assert.deepEqual(packed.explain(src, flow), engine.explain(src, flow), src);
    }
    assert.ok(packed.explain('20.33.1.10', { host: 'outlook.office365.com' }).matched);
    assert.deepEqual(packed.eligibleStates, engine.eligibleStates);
    assert.deepEqual(packed.headers, engine.headers);
  });

  test('options: undefined and null are defaults; unknown keys and wrong types throw', () => {
    assert.deepEqual(engine.classify('192.0.2.1', undefined), { src: '192.0.2.1', class: 'unregistered' });
    assert.deepEqual(engine.classify('192.0.2.1', null), { src: '192.0.2.1', class: 'unregistered' });
    assert.deepEqual(engine.classify('192.0.2.1', { dst: null, host: undefined }), { src: '192.0.2.1', class: 'unregistered' });
    assert.throws(() => engine.classify('192.0.2.1', { hots: 'x' }), /unknown option `hots`/);
    assert.throws(() => engine.classify('192.0.2.1', { dst: 5 }), /invalid type/);
    assert.throws(() => validate(text, { strcit: true }), /unknown option `strcit`/);
    assert.throws(() => validate(text, { strict: 'yes' }), /invalid type/);
    assert.throws(() => validate(text, [true]), /expected an object/);
    assert.throws(() => validate(42), /string or a Uint8Array/);
    assert.throws(() => new PolicyEngine({}), /string or a Uint8Array/);
  });

  test('no input makes the module fail: odd sources, hosts and policies', () => {
    for (const src of ['', ' ', '::ffff:20.33.1.10', '[2001:db8::1]:443', '20.33.1.10:8080', 'a'.repeat(100000), '\u0000', '💥']) {
      const d = engine.classify(src, { host: '💥.'.repeat(1000) });
      assert.equal(typeof d.class, 'string');
    }
    for (const p of ['', '{', '[]', 'null', '{"version": 1e999}', '['.repeat(100000), '"\ud800"']) {
      const r = validate(p);
      assert.equal(r.valid, false);
      assert.ok(r.diagnostics.length > 0);
    }
    // The module still works after all that.
    assert.equal(engine.classify('20.33.1.10', { host: 'outlook.office365.com' }).class, 'maps');
  });
});

describe('what-if and diff: same as mapsctl (fixtures/diff)', () => {
  const demo = readText('demo', 'policy.json');
  const engine = new PolicyEngine(demo);

  test('whatIf({edges: ["nyc"]}) gives the changes of `mapsctl what-if --format json` (what-if-nyc.golden.json)', () => {
    const golden = JSON.parse(readText('diff', 'what-if-nyc.golden.json'));
    const w = engine.whatIf({ edges: ['nyc'] });
    assert.deepEqual(w.changes, golden.changes);
    assert.deepEqual(w, golden);
  });

  test('whatIf({edges: ["sea"]}) moves fabrikam-wa from sea to sjc; the engine itself is unchanged', () => {
    const before = engine.map();
    const { changes } = engine.whatIf({ edges: ['sea'] });
    const fab = changes.find((c) => c.registration === 'fabrikam-wa');
    assert.equal(fab.before.edge, 'sea');
    assert.equal(fab.after.edge, 'sjc');
    assert.equal(typeof fab.distance_added_km, 'number');
    assert.ok(fab.distance_added_km > 0);
    for (const c of changes) assert.deepEqual(Object.keys(c), ['registration', 'before', 'after', 'distance_added_km']);
    assert.deepEqual(engine.map(), before);
    assert.equal(engine.classify('20.33.1.10', { host: 'outlook.office365.com' }).edge, 'sea');
  });

  test('whatIf: nothing drained moves nothing; links too; an unknown id throws naming it', () => {
    assert.deepEqual(engine.whatIf().changes, []);
    assert.deepEqual(engine.whatIf({}).changes, []);
    const doc = JSON.parse(demo);
    const sea = doc.edges.find((e) => e.id === 'sea');
    // Every link of sea drained is sea drained.
    assert.deepEqual(engine.whatIf({ links: sea.links.map((l) => l.id) }).changes, engine.whatIf({ edges: ['sea'] }).changes);
    assert.throws(() => engine.whatIf({ edges: ['atlantis'] }), /no edge has the id `atlantis`/);
    assert.throws(() => engine.whatIf({ links: ['atlantis-9'] }), /no link has the id `atlantis-9`/);
    assert.throws(() => engine.whatIf({ edge: ['sea'] }), /unknown option `edge`/);
    assert.throws(() => engine.whatIf({ edges: 'sea' }), /^Error: whatIf options: /);
  });

  test('diff(demo, new-policy.json) is `mapsctl diff --format json` without its trace (diff.golden.json)', () => {
    const golden = JSON.parse(readText('diff', 'diff.golden.json'));
    delete golden.trace;
    const d = diff(demo, read('diff', 'new-policy.json'));
    assert.deepEqual(d, golden);
    assert.deepEqual(d.registrations, { added: ['fabrikam-or'], removed: ['consolidated-mx'] });
    const same = diff(demo, demo);
    assert.deepEqual(same, { registrations: { added: [], removed: [] }, prefixes: { added: [], removed: [], changed: [] }, routes: [] });
  });

  test('diff of an invalid policy throws the PolicyError with its report', () => {
    const bad = readText('invalid', 'unknown-fields.json');
    for (const args of [[bad, demo], [demo, bad]]) {
      let err;
      try { diff(...args); } catch (e) { err = e; }
      assert.ok(err instanceof Error);
      assert.equal(err.name, 'PolicyError');
      assert.deepEqual(err.report, validate(bad));
    }
    assert.throws(() => diff(demo, 42), /string or a Uint8Array/);
  });
});
