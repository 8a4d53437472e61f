// Validates kvd's deployment files without a cluster:
//  1. every document of deploy/kubernetes/*.yaml against the Kubernetes API schema
//     (kubernetes-models, whose validators are generated from the Kubernetes OpenAPI spec);
//  2. the properties the design relies on that a schema cannot check (probe endpoints,
//     Parallel start, PDB, preStop hook, non-root, ...), so a typo in a field name fails too;
//  3. deploy/prometheus/kvd-alerts.yaml (rule file shape, the expected alerts, and metric names
//     that kvd exports) and deploy/grafana/kvd-dashboard.json (parses, every panel has a query);
//  4. a self-check: a broken copy of the StatefulSet must be rejected, proving the validator runs.
// Usage: node validate_manifests.js <repo root> [<file with kvd's /metrics output>]
// Prints one line per check and "N passed, M failed"; exits non-zero on any failure.
'use strict';
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const { StatefulSet } = require('kubernetes-models/apps/v1');
const { Service } = require('kubernetes-models/v1');
const { PodDisruptionBudget } = require('kubernetes-models/policy/v1');

const root = process.argv[2];
const metricsFile = process.argv[3];
if (!root) {
  console.error('usage: node validate_manifests.js <repo root> [metrics file]');
  process.exit(2);
}
const models = {
  'apps/v1/StatefulSet': StatefulSet,
  'v1/Service': Service,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

let passed = 0;
let failed = 0;
function check(name, fn) {
  try {
    fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
function expect(cond, what) {
  if (!cond) throw new Error(what);
}

function validate(doc) {
  const Model = models[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

const k8sDir = path.join(root, 'deploy/kubernetes');
const docs = [];
for (const file of fs.readdirSync(k8sDir).filter((f) => f.endsWith('.yaml')).sort()) {
  const all = yaml.loadAll(fs.readFileSync(path.join(k8sDir, file), 'utf8')).filter(Boolean);
  all.forEach((doc, i) => {
    docs.push(doc);
    check(`schema ${file}#${i} ${doc.kind}/${doc.metadata && doc.metadata.name}`, () =>
      validate(doc));
  });
}
const find = (kind, name) => docs.find((d) => d.kind === kind && d.metadata.name === name);

check('StatefulSet kvd: 3 core replicas, Parallel start, headless service', () => {
  const s = find('StatefulSet', 'kvd');
  expect(s, 'missing');
  expect(s.spec.replicas === 3, 'replicas != 3');
  expect(s.spec.podManagementPolicy === 'Parallel', 'podManagementPolicy != Parallel');
  const headless = find('Service', s.spec.serviceName);
  expect(headless && headless.spec.clusterIP === 'None', 'serviceName is not a headless Service');
  expect(headless.spec.publishNotReadyAddresses === true, 'peers must resolve before ready');
  const env = Object.fromEntries(s.spec.template.spec.containers[0].env.map((e) => [e.name, e]));
  expect(env.KVD_REPLICAS.value === '3', 'KVD_REPLICAS must be the core size 3');
  expect(env.KVD_SERVICE.value === s.spec.serviceName, 'KVD_SERVICE != serviceName');
});
check('StatefulSet kvd: probes on distinct endpoints, preStop, volume', () => {
  const s = find('StatefulSet', 'kvd');
  const c = s.spec.template.spec.containers[0];
  expect(c.readinessProbe.httpGet.path === '/readyz', 'readiness probe is not /readyz');
  expect(c.livenessProbe.httpGet.path === '/livez', 'liveness probe is not /livez');
  const port = (name) => c.ports.find((p) => p.name === name).containerPort;
  expect(c.readinessProbe.httpGet.port === 'metrics' && port('metrics') === 2381, 'probe port');
  expect(port('client') === 2379 && port('peer') === 2380, 'client/peer ports');
  expect(c.lifecycle.preStop.exec.command.join(' ').endsWith('pre-stop'), 'preStop hook');
  expect(c.command[0] === '/usr/local/bin/kvd-k8s-entrypoint', 'entrypoint');
  const claim = s.spec.volumeClaimTemplates[0];
  expect(c.volumeMounts.some((m) => m.name === claim.metadata.name && m.mountPath === '/var/lib/kvd'),
    'data volume not mounted at /var/lib/kvd');
  expect(c.resources.requests.cpu && c.resources.requests.memory, 'resource requests');
  expect(s.spec.template.spec.affinity.podAntiAffinity, 'pod anti-affinity');
});
check('StatefulSet kvd: restrictive security context', () => {
  const spec = find('StatefulSet', 'kvd').spec.template.spec;
  const c = spec.containers[0].securityContext;
  expect(spec.securityContext.runAsNonRoot === true && spec.securityContext.runAsUser > 0, 'non-root');
  expect(c.allowPrivilegeEscalation === false, 'allowPrivilegeEscalation');
  expect(c.readOnlyRootFilesystem === true, 'readOnlyRootFilesystem');
  expect(c.capabilities.drop.includes('ALL'), 'capabilities not dropped');
  expect(spec.securityContext.seccompProfile.type === 'RuntimeDefault', 'seccomp');
});
check('PodDisruptionBudget: at most one member down, selects the pods', () => {
  const p = docs.find((d) => d.kind === 'PodDisruptionBudget');
  expect(p && p.spec.maxUnavailable === 1, 'maxUnavailable != 1');
  const labels = find('StatefulSet', 'kvd').spec.template.metadata.labels;
  for (const [k, v] of Object.entries(p.spec.selector.matchLabels)) expect(labels[k] === v, k);
});
check('client Service exposes 2379 and 2381', () => {
  const s = find('Service', 'kvd-client');
  expect(s && s.spec.clusterIP !== 'None', 'missing or headless');
  const ports = s.spec.ports.map((p) => p.port).sort();
  expect(JSON.stringify(ports) === '[2379,2381]', `ports ${ports}`);
});
check('self-check: a broken StatefulSet is rejected', () => {
  const broken = JSON.parse(JSON.stringify(find('StatefulSet', 'kvd')));
  broken.spec.replicas = 'three';
  let rejected = false;
  try {
    validate(broken);
  } catch (e) {
    rejected = true;
  }
  expect(rejected, 'replicas: "three" was accepted');
});

// Metric names kvd exports (from a live /metrics when given, else none are checked).
let exported = null;
if (metricsFile) {
  exported = new Set();
  for (const line of fs.readFileSync(metricsFile, 'utf8').split('\n')) {
    const m = /^# TYPE (\S+) (\S+)/.exec(line);
    if (!m) continue;
    exported.add(m[1]);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1] + s);
  }
}
// Label names that match the metric-name pattern.
const labelNames = new Set(['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code']);
function metricNames(expr) {
  const names = new Set();
  const re = /\b((?:etcd|grpc|process|kvd)_[a-zA-Z0-9_]+)/g;
  let m;
  while ((m = re.exec(expr))) {
    if (!labelNames.has(m[1])) names.add(m[1]);
  }
  return [...names];
}
// Series kvd exports only once it has peers (none in a one-member run).
const needsPeers = new Set(['etcd_network_peer_round_trip_time_seconds_bucket']);
function checkNames(expr, where) {
  if (!exported) return;
  for (const n of metricNames(expr)) {
    if (!needsPeers.has(n)) expect(exported.has(n), `${where}: kvd does not export ${n}`);
  }
}

check('alert rules: shape and etcd\'s usual alerts', () => {
  const rules = yaml.load(fs.readFileSync(path.join(root, 'deploy/prometheus/kvd-alerts.yaml'), 'utf8'));
  const all = rules.groups.flatMap((g) => g.rules);
  for (const r of all) {
    expect(typeof r.alert === 'string' && typeof r.expr === 'string', 'alert and expr');
    expect(/^\d+[smh]$/.test(r.for), `${r.alert}: for`);
    expect(['warning', 'critical'].includes(r.labels.severity), `${r.alert}: severity`);
    expect(r.annotations.summary && r.annotations.description, `${r.alert}: annotations`);
    checkNames(r.expr, r.alert);
  }
  const names = new Set(all.map((r) => r.alert));
  for (const n of ['etcdNoLeader', 'etcdHighNumberOfLeaderChanges', 'etcdHighFsyncDurations',
    'etcdHighNumberOfFailedProposals', 'etcdDatabaseQuotaLowSpace']) {
    expect(names.has(n), `missing ${n}`);
  }
});
check('grafana dashboard: parses, every panel queries exported metrics', () => {
  const d = JSON.parse(fs.readFileSync(path.join(root, 'deploy/grafana/kvd-dashboard.json'), 'utf8'));
  expect(d.panels.length >= 10, 'too few panels');
  const ids = new Set();
  for (const p of d.panels) {
    expect(!ids.has(p.id), `duplicate panel id ${p.id}`);
    ids.add(p.id);
    expect(p.targets.length > 0 && p.targets.every((t) => t.expr), `${p.title}: no query`);
    for (const t of p.targets) checkNames(t.expr, p.title);
  }
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
