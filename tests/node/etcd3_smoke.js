#!/usr/bin/env node
// Drives the npm etcd3 client (pinned in package.json, installed by scripts/setup.sh) against
// an etcd-compatible cluster: get, put, delete, prefix get, watch events, a lease with an
// attached key + keep-alive + revoke, a lock, an election.
//
// Usage: node etcd3_smoke.js HOST:PORT [HOST:PORT...]
// Prints one "ok <step>" line per passed step; on the first failed check prints
// "FAIL <step>: <error>" and exits 1. Every wait is bounded; the whole run is bounded by
// OVERALL_TIMEOUT_MS. Keys live under a per-run prefix, so reruns on one cluster do not clash.
'use strict';

const assert = require('assert');
const { Etcd3, EtcdLockFailedError } = require('etcd3');

const OVERALL_TIMEOUT_MS = 60000;
const WAIT_TIMEOUT_MS = 15000;

let step = 'connect';

// Resolves once `predicate()` is true, polling; rejects after WAIT_TIMEOUT_MS.
function waitFor(what, predicate) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const poll = () => {
      if (predicate()) return resolve();
      if (Date.now() - start > WAIT_TIMEOUT_MS) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

// Resolves with the first `event` emitted by `emitter`; rejects after WAIT_TIMEOUT_MS.
function once(emitter, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), WAIT_TIMEOUT_MS);
    emitter.once(event, (v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

async function main(hosts) {
  const client = new Etcd3({ hosts, dialTimeout: 5000 });
  const p = `npm-smoke-${process.pid}-${Date.now()}/`;
  try {
    step = 'put and get';
    const putRes = await client.put(`${p}a`).value('va');
    const rev = Number(putRes.header.revision);
    assert.ok(rev >= 2, `put revision ${putRes.header.revision}`);
    assert.strictEqual(await client.get(`${p}a`).string(), 'va');
    const kv = (await client.get(`${p}a`).exec()).kvs[0];
    assert.strictEqual(kv.create_revision, String(rev));
    assert.strictEqual(kv.mod_revision, String(rev));
    assert.strictEqual(kv.version, '1');
    assert.strictEqual(await client.get(`${p}missing`).string(), null);
    assert.strictEqual(await client.get(`${p}a`).exists(), true);
    assert.strictEqual(await client.get(`${p}missing`).exists(), false);
    const prev = await client.put(`${p}a`).value('va2').getPrevious();
    assert.strictEqual(prev.value.toString(), 'va');
    console.log(`ok ${step}`);

    step = 'prefix get';
    await client.put(`${p}b`).value('vb');
    await client.put(`${p}c`).value('vc');
    await client.put(`${p.slice(0, -1)}0`).value('outside the prefix');
    assert.deepStrictEqual(await client.getAll().prefix(p).strings(), { [`${p}a`]: 'va2', [`${p}b`]: 'vb', [`${p}c`]: 'vc' });
    assert.deepStrictEqual(await client.getAll().prefix(p).keys(), [`${p}a`, `${p}b`, `${p}c`]);
    assert.strictEqual(await client.getAll().prefix(p).count(), 3);
    assert.deepStrictEqual(await client.getAll().prefix(p).sort('Key', 'Descend').limit(2).keys(), [`${p}c`, `${p}b`]);
    console.log(`ok ${step}`);

    step = 'delete';
    const del = await client.delete().key(`${p}c`).exec();
    assert.strictEqual(del.deleted, '1');
    assert.strictEqual(await client.get(`${p}c`).string(), null);
    const delAll = await client.delete().prefix(p).exec();
    assert.strictEqual(delAll.deleted, '2');
    assert.strictEqual(await client.getAll().prefix(p).count(), 0);
    console.log(`ok ${step}`);

    step = 'watch';
    const watcher = await client.watch().prefix(`${p}w/`).withPreviousKV().create();
    const events = [];
    watcher.on('put', (kv, previous) => events.push(['put', kv.key.toString(), kv.value.toString(), previous ? previous.value.toString() : null]));
    watcher.on('delete', (kv, previous) => events.push(['delete', kv.key.toString(), previous ? previous.value.toString() : null]));
    await client.put(`${p}w/x`).value('1');
    await client.put(`${p}other`).value('not watched');
    await client.put(`${p}w/x`).value('2');
    await client.delete().key(`${p}w/x`);
    await waitFor('3 watch events', () => events.length >= 3);
    assert.deepStrictEqual(events, [
      ['put', `${p}w/x`, '1', null],
      ['put', `${p}w/x`, '2', '1'],
      ['delete', `${p}w/x`, '2'],
    ]);
    await watcher.cancel();
    console.log(`ok ${step}`);

    step = 'lease';
    const lease = client.lease(10);
    const keepalive = once(lease, 'keepaliveSucceeded');
    const leaseId = await lease.grant();
    await lease.put(`${p}leased`).value('lv');
    const leasedKv = (await client.get(`${p}leased`).exec()).kvs[0];
    assert.strictEqual(leasedKv.lease, leaseId);
    const ka = await keepalive;
    assert.strictEqual(ka.TTL, '10');
    const once1 = await lease.keepaliveOnce();
    assert.strictEqual(once1.TTL, '10');
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: leaseId, keys: true });
    assert.strictEqual(ttl.grantedTTL, '10');
    assert.ok(Number(ttl.TTL) > 0 && Number(ttl.TTL) <= 10, `remaining TTL ${ttl.TTL}`);
    assert.deepStrictEqual(ttl.keys.map((k) => k.toString()), [`${p}leased`]);
    await lease.revoke();
    assert.strictEqual(await client.get(`${p}leased`).string(), null);
    const gone = await client.leaseClient.leaseTimeToLive({ ID: leaseId });
    assert.strictEqual(gone.TTL, '-1');
    console.log(`ok ${step}`);

    step = 'lock';
    const lock1 = client.lock(`${p}lock`);
    await lock1.acquire();
    assert.strictEqual(await client.get(`${p}lock`).exists(), true);
    await assert.rejects(client.lock(`${p}lock`).acquire(), EtcdLockFailedError);
    await lock1.release();
    assert.strictEqual(await client.get(`${p}lock`).exists(), false);
    const lock2 = client.lock(`${p}lock`);
    await lock2.acquire();
    await lock2.release();
    console.log(`ok ${step}`);

    step = 'election';
    const election = client.election(`${p}election`, 10);
    const first = election.campaign('candidate-1');
    await first.wait();
    assert.strictEqual(await election.leader(), 'candidate-1');
    const second = election.campaign('candidate-2');
    let secondElected = false;
    second.on('elected', () => { secondElected = true; });
    await first.resign();
    await waitFor('the second candidate to be elected', () => secondElected);
    assert.strictEqual(await election.leader(), 'candidate-2');
    await second.resign();
    assert.strictEqual(await election.leader(), undefined);
    console.log(`ok ${step}`);

    step = 'cleanup';
    await client.delete().prefix(p);
  } finally {
    client.close();
  }
}

const hosts = process.argv.slice(2);
if (hosts.length === 0) {
  console.error('usage: node etcd3_smoke.js HOST:PORT [HOST:PORT...]');
  process.exit(2);
}
const overall = setTimeout(() => {
  console.log(`FAIL ${step}: the whole run took over ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);
main(hosts).then(
  () => {
    clearTimeout(overall);
    console.log('ok all');
    process.exit(0);
  },
  (err) => {
    console.log(`FAIL ${step}: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  });
