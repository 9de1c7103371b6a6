// Imports in the Node package (packages/maps-policy-node): `importFiles` and
// `inspectImports` against `mapsctl import`'s golden outputs (fixtures/imports/): the
// same inputs give the same policy, byte for byte, and the same report (less the CLI's
// `wrote ...` line). Figures (the whole Service Tags file) are printed, never asserted.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);
const { importFiles, inspectImports, validate } = require(join(ROOT, 'packages/maps-policy-node'));

// Named as the CLI goldens were made (`mapsctl import` run from the repository root):
// the names are in the report and the provenance.
const BASE = 'fixtures/imports/base-policy.json';
const SERVICES = 'fixtures/imports/azure/peering-services.json';
const PREFIXES = 'fixtures/imports/azure/prefixes.json';
const LAMNA = 'fixtures/imports/azure/lamna-co.json';
const TAGS = 'fixtures/imports/ServiceTags_Public_20250728.json';
const M365 = 'fixtures/imports/m365-endpoints-worldwide.2024.json';

const text = (p) => readFileSync(join(ROOT, p), 'utf8');
const file = (p) => ({ name: p, text: text(p) });
const base = text(BASE);
// The CLI's report less its last line (`wrote <standard output>: valid, ...`).
const goldenReport = (stem) => text(`fixtures/imports/${stem}.golden.txt`).replace(/[^\n]*\n$/, '');
const golden = (stem) => text(`fixtures/imports/${stem}.golden.json`);

function thrown(fn) {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected a throw');
}

describe('importFiles: the same policy and report as mapsctl import (fixtures/imports goldens)', () => {
  test('azure: the three Azure files onto base-policy.json (azure.golden.*)', () => {
    const r = importFiles(base, [file(SERVICES), file(PREFIXES), file(LAMNA)], { policyName: BASE });
    assert.equal(r.policy, golden('azure'));
    assert.equal(r.text, goldenReport('azure'));
    assert.deepEqual(r.kinds, ['azure', 'azure', 'azure']);
    assert.deepEqual(r.report.map((s) => s.kind), ['read', 'took', 'skipped', 'skipped', 'removed']);
    assert.equal(r.report[1].items.length, 12);
    assert.equal(r.report[4].items.length, 13);
    assert.equal(r.validation.valid, true);
    assert.deepEqual(r.validation, validate(r.policy));
  });

  test('service-tags: AzureFrontDoor.FirstParty and AzureActiveDirectory (service-tags.golden.*); figures printed', (t) => {
    const tagsText = text(TAGS);
    const t0 = performance.now();
    const info = inspectImports([{ name: TAGS, text: tagsText }]);
    const t1 = performance.now();
    const r = importFiles(base, [{ name: TAGS, text: tagsText }], {
      tags: ['AzureFrontDoor.FirstParty', 'AzureActiveDirectory'],
      policyName: BASE,
    });
    const t2 = performance.now();
    const bytes = readFileSync(join(ROOT, TAGS));
    const t3 = performance.now();
    const fromBytes = importFiles(base, [{ name: TAGS, text: bytes }], {
      tags: ['AzureFrontDoor.FirstParty', 'AzureActiveDirectory'],
      policyName: BASE,
    });
    const t4 = performance.now();
    assert.equal(r.policy, golden('service-tags'));
    assert.equal(r.text, goldenReport('service-tags'));
    assert.equal(fromBytes.policy, r.policy);
    assert.deepEqual(r.kinds, ['service-tags']);
    assert.equal(info[0].kind, 'service-tags');
    assert.equal(info[0].tags.length, 2967);
    assert.ok(info[0].tags.includes('AzureFrontDoor.FirstParty'));
    const mb = (bytes.length / 1e6).toFixed(1);
    t.diagnostic(`Service Tags file (${mb} MB, 2967 tags): inspectImports ${(t1 - t0).toFixed(0)} ms, ` +
      `importFiles from text ${(t2 - t1).toFixed(0)} ms, from bytes ${(t4 - t3).toFixed(0)} ms`);
  });

  test('m365: the default categories, Optimize and Allow (m365.golden.*)', () => {
    const r = importFiles(base, [file(M365)], { policyName: BASE });
    assert.equal(r.policy, golden('m365'));
    assert.equal(r.text, goldenReport('m365'));
    assert.deepEqual(r.kinds, ['m365']);
    // Categories in any case, as `--categories` takes them.
    const again = importFiles(base, [file(M365)], { policyName: BASE, categories: ['optimize', 'ALLOW'] });
    assert.equal(again.policy, r.policy);
  });

  test('one call with every kind is the three imports in turn (azure, service-tags, m365)', () => {
    const tags = ['AzureFrontDoor.FirstParty'];
    const all = importFiles(base, [file(M365), file(TAGS), file(SERVICES), file(PREFIXES)], { tags });
    assert.deepEqual(all.kinds, ['m365', 'service-tags', 'azure', 'azure']);
    const a = importFiles(base, [file(SERVICES), file(PREFIXES)]).policy;
    const b = importFiles(a, [file(TAGS)], { tags }).policy;
    const c = importFiles(b, [file(M365)]).policy;
    assert.equal(all.policy, c);
    assert.deepEqual(JSON.parse(c).provenance.map((p) => p.kind), ['azure', 'service-tags', 'm365']);
    assert.equal(validate(c).valid, true);
  });

  test('requiredOnly leaves out the sets marked "required": false', () => {
    const r = importFiles(base, [file(M365)], { requiredOnly: true });
    const names = JSON.parse(r.policy).destinations.map((d) => d.name).filter((n) => n.startsWith('m365 '));
    assert.equal(names.length, 9);
    assert.ok(!names.includes('m365 2 Exchange'));
  });
});

describe("inspectImports: each file's kind, by content", () => {
  test('every fixture is recognised', () => {
    const names = [SERVICES, PREFIXES, LAMNA, 'fixtures/imports/azure-examples/peering-service.json',
      'fixtures/imports/azure-examples/prefixes.json', M365];
    const info = inspectImports(names.map(file));
    assert.deepEqual(info.map((i) => i.kind), ['azure', 'azure', 'azure', 'azure', 'azure', 'm365']);
    assert.ok(info.every((i) => i.tags === undefined));
  });

  test('a file of no known kind, or not JSON, throws an ImportError naming it', () => {
    const e = thrown(() => inspectImports([{ name: 'policy.json', text: base }]));
    assert.equal(e.name, 'ImportError');
    assert.equal(e.file, 'policy.json');
    const cut = thrown(() => inspectImports([{ name: 'cut.json', text: base.slice(0, 100) }]));
    assert.equal(cut.name, 'ImportError');
    assert.equal(cut.file, 'cut.json');
    assert.equal(cut.pointer, '');
    assert.match(cut.message, /^cut\.json:\d+:\d+: at \/: not JSON/);
  });
});

describe('refusals: file, JSON Pointer and reason, as mapsctl says them', () => {
  test('a damaged Azure body (a prefix that is a number)', () => {
    const v = JSON.parse(text(PREFIXES));
    v.value[3].properties.prefix = 42;
    const e = thrown(() => importFiles(base, [file(SERVICES), { name: 'prefixes.json', text: JSON.stringify(v) }]));
    assert.equal(e.name, 'ImportError');
    assert.equal(e.file, 'prefixes.json');
    assert.equal(e.pointer, '/value/3/properties/prefix');
    assert.equal(e.message, 'prefixes.json: at /value/3/properties/prefix: expected a string, found a number');
  });

  test('an unknown tag (with a suggestion), no tag, an unknown category, two endpoint files', () => {
    const tags = file(TAGS);
    const e = thrown(() => importFiles(base, [tags], { tags: ['AzureFrontdoor.Frontend'] }));
    assert.equal(e.name, 'ImportError');
    assert.match(e.message, /no service tag `AzureFrontdoor\.Frontend` among its 2967 tags; did you mean `AzureFrontDoor\.Frontend`\?/);
    assert.equal(e.pointer, null);
    assert.match(thrown(() => importFiles(base, [tags])).message, /no service tag chosen/);
    const c = thrown(() => importFiles(base, [file(M365)], { categories: ['Optimise'] }));
    assert.equal(c.name, 'ImportError');
    assert.match(c.message, /unknown category `Optimise`/);
    const two = thrown(() => importFiles(base, [file(M365), { name: 'again.json', text: text(M365) }]));
    assert.equal(two.file, 'again.json');
    assert.match(two.message, /a second m365 file/);
  });

  test('an updated policy that would not validate is refused with its report (the published examples)', () => {
    const examples = ['fixtures/imports/azure-examples/peering-service.json', 'fixtures/imports/azure-examples/prefixes.json'];
    const examplePolicy = JSON.parse(base);
    examplePolicy.provider.name = 'serviceProvider1';
    examplePolicy.edges[0].peering_location = 'peeringLocation1';
    examplePolicy.edges[1].peering_location = 'peeringLocation2';
    const e = thrown(() => importFiles(JSON.stringify(examplePolicy), examples.map(file)));
    assert.equal(e.name, 'PolicyError');
    assert.match(e.message, /^import refused: the updated policy would not validate/);
    assert.ok(e.report.diagnostics.some((d) => d.code === 'non-public-prefix'));
    // Of another provider: nothing imported, and said so.
    const other = thrown(() => importFiles(base, examples.map(file), { policyName: 'base' }));
    assert.equal(other.name, 'ImportError');
    assert.match(other.message, /no peering service of Contoso Networks \(the provider of base\)/);
  });

  test('a base that is not a policy document throws its PolicyError; bad arguments throw', () => {
    const e = thrown(() => importFiles('{"version": 1, "edgez": []}', [file(M365)]));
    assert.equal(e.name, 'PolicyError');
    assert.equal(e.report.diagnostics[0].code, 'unknown-field');
    assert.match(thrown(() => importFiles(base, [file(M365)], { tag: ['x'] })).message, /unknown option `tag`/);
    assert.match(thrown(() => importFiles(base, 'x')).message, /expected an array/);
    assert.match(thrown(() => importFiles(base, [{ name: 'a', text: 3 }])).message, /`text` must be a string or a Uint8Array/);
    assert.match(thrown(() => inspectImports([{ text: '[]' }])).message, /`name` must be a string/);
  });
});
