// Compiled by `tsc --strict` in node.test.mjs: the packages' typings describe the values
// exactly enough that correct use compiles and misuse does not (`@ts-expect-error`
// fails the build when the line below it is NOT an error).
import init, * as web from '../../../packages/maps-policy-web/maps_policy.js';
import * as node from '../../../packages/maps-policy-node/maps_policy.js';
import type {
  Candidate, Decision, DiagnosticCode, Explanation, ImportError, ImportFileInfo, ImportKind, ImportResult,
  ImportSection, MapData, PolicyDiff, PolicyError, PrefixItem, Report, RouteChange, Summary, WhatIf,
} from '../../../packages/maps-policy-node/maps_policy.js';

export async function uses(policy: string, bytes: Uint8Array): Promise<void> {
  const report: Report = node.validate(policy, { strict: true });
  const fromBytes: Report = node.validate(bytes);
  const first = report.diagnostics[0];
  if (first) {
    const code: DiagnosticCode = first.code;
    const severity: 'error' | 'warning' = first.severity;
    const line: number | undefined = first.line;
    const help: string | undefined = first.help;
    void [code, severity, line, help];
  }
  const states: Record<string, number> | undefined = fromBytes.summary?.prefixes_by_state;

  const engine = new node.PolicyEngine(policy);
  const d: Decision = engine.classify('198.51.100.7', { dst: '13.107.6.152', host: null });
  if (d.class === 'maps') {
    const edge: string = d.edge;
    const link: string = d.link;
    const backup: string | null = d.backup;
    const failover: string[] = d.failover;
    const km: number = d.distance_km;
    void [edge, link, backup, failover, km];
  } else if (d.class === 'excluded-category' || d.class === 'no-edge') {
    const registration: string = d.registration;
    const category: 'Default' | 'Allow' | 'Optimize' | undefined = d.category;
    // @ts-expect-error only a `maps` decision names an edge
    void d.edge;
    void [registration, category];
  } else if (d.class === 'unverified' || d.class === 'non-microsoft') {
    const registration: string = d.registration;
    const prefix: string = d.prefix;
    // @ts-expect-error only a `maps` decision names an edge
    void d.edge;
    void [registration, prefix];
  } else {
    const cls: 'invalid-source' | 'unregistered' = d.class;
    // @ts-expect-error these classes name no registration
    void d.registration;
    void cls;
  }
  engine.classify('198.51.100.7');
  // @ts-expect-error a misspelt option
  engine.classify('198.51.100.7', { hots: 'x' });
  // @ts-expect-error a misspelt option
  node.validate(policy, { strcit: true });
  // @ts-expect-error strict is a boolean
  node.validate(policy, { strict: 'yes' });
  // @ts-expect-error the policy is text or bytes
  node.validate(42);

  const x: Explanation = engine.explain('198.51.100.7', { host: 'outlook.office365.com' });
  const text: string = x.text;
  const site: { lat: number; lon: number; from: string } | null = x.site;
  const why: string | undefined = x.edges[0]?.why;
  const cands: Candidate[] = engine.edges('fabrikam-wa');
  const reason: 'pinned-primary' | 'pinned-backup' | 'nearest' | undefined = cands[0]?.reason;
  const map: MapData = engine.map();
  const primary: string | null | undefined = map.registrations[0]?.primary;
  const lines: string = engine.classifyTrace('{"src": "198.51.100.7"}\n');
  const summary: Summary = engine.summary;
  const cost: number = summary.telemetry_cost_usd;
  const again: Report = engine.report;
  const w1: WhatIf = engine.whatIf({ edges: ['sea'], links: [] });
  const moved: RouteChange | undefined = w1.changes[0];
  const after: string | null | undefined = moved?.after.edge;
  const added: number | null | undefined = moved?.distance_added_km;
  engine.whatIf();
  // @ts-expect-error edges is a list of ids
  engine.whatIf({ edges: 'sea' });
  // @ts-expect-error a misspelt option
  engine.whatIf({ edge: ['sea'] });
  const pd: PolicyDiff = node.diff(policy, bytes);
  const item: PrefixItem | undefined = pd.prefixes.added[0];
  const itemState: string | undefined = item?.state;
  const key: boolean | undefined = pd.prefixes.changed[0]?.after.key;
  const gone: string[] = pd.registrations.removed;
  void [after, added, itemState, key, gone];
  engine.free();
  void [states, text, site, why, reason, primary, lines, cost, again];

  const files = [{ name: 'prefixes.json', text: policy }, { name: 'tags.json', text: bytes }];
  const info: ImportFileInfo[] = node.inspectImports(files);
  const tagNames: string[] | undefined = info[0]?.tags;
  const kind: ImportKind | undefined = info[0]?.kind;
  const imported: ImportResult = node.importFiles(policy, files, { tags: ['AzureCloud'], categories: ['Optimize'] });
  const newPolicy: string = imported.policy;
  const section: ImportSection | undefined = imported.report[0];
  const sectionKind: 'read' | 'took' | 'skipped' | 'removed' | undefined = section?.kind;
  const valid: boolean = imported.validation.valid;
  node.importFiles(bytes, files);
  // @ts-expect-error tags is a list of names
  node.importFiles(policy, files, { tags: 'AzureCloud' });
  // @ts-expect-error a misspelt option
  node.importFiles(policy, files, { requiredonly: true });
  // @ts-expect-error a file has a name and a text
  node.importFiles(policy, [{ text: policy }]);
  // @ts-expect-error an import kind is one of three
  const notKind: ImportKind = 'arm';
  try {
    node.importFiles(policy, files);
  } catch (e) {
    const err = e as ImportError;
    const name: 'ImportError' = err.name;
    const file: string | null = err.file;
    const pointer: string | null = err.pointer;
    void [name, file, pointer];
  }
  void [tagNames, kind, newPolicy, sectionKind, valid, notKind];

  try {
    new node.PolicyEngine(bytes, { strict: true }).free();
  } catch (e) {
    const err = e as PolicyError;
    const name: 'PolicyError' = err.name;
    const r: Report = err.report;
    void [name, r];
  }

  await init();
  const w: Report = web.validate(policy);
  const we = new web.PolicyEngine(policy);
  const wd: Decision = we.classify('198.51.100.7');
  void [w, wd];
}
