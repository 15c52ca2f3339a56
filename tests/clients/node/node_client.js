#!/usr/bin/env node
// node-postgres (pg) against fusegate, or against PostgreSQL to check the
// expectations:
//
//   node tests/clients/node/node_client.js --host H --port P --dbname D --user U
//
// Checks every supported type, NULLs, parameters,
// named prepared statements, transactions, a pool of concurrent clients and
// SQLSTATEs. Exits non-zero on the first failed check, naming it. (pg's
// `binary: true` mode fails on PostgreSQL itself, so results are text; the
// other clients' tests cover binary results.)
'use strict';

process.env.TZ = 'UTC'; // pg parses DATE and TIMESTAMP in local time
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Client, Pool } = require('pg');

const args = { host: '127.0.0.1', port: '5433', dbname: 'default', user: 'tester' };
for (let i = 2; i + 1 < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const config = {
  host: args.host,
  port: Number(args.port),
  database: args.dbname,
  user: args.user,
  password: process.env.PGPASSWORD || '',
};

// (column, SQL type, type OID) — the types of tests/clients/common.py.
const COLUMNS = [
  ['c_small', 'SMALLINT', 21],
  ['c_int', 'INT', 23],
  ['c_big', 'BIGINT', 20],
  ['c_real', 'REAL', 700],
  ['c_double', 'DOUBLE PRECISION', 701],
  ['c_num', 'NUMERIC(12,3)', 1700],
  ['c_varchar', 'VARCHAR(20)', 1043],
  ['c_text', 'TEXT', 25],
  ['c_bool', 'BOOLEAN', 16],
  ['c_date', 'DATE', 1082],
  ['c_ts', 'TIMESTAMP', 1114],
];
const NAMES = COLUMNS.map((c) => c[0]).join(', ');

// Values as parameters, and as node-postgres returns them in text mode:
// int8 and numeric come back as strings (they do not fit a JS number).
const ROWS = [
  [1, 42, '9000000000', 1.5, 2.25, '12345.678', 'héllo', 'it\'s "text"\nline 2', true,
    '2024-02-29', '2024-05-01 09:30:00.123456'],
  [-32768, -2147483648, '-9223372036854775808', -0.25, -1e300, '-0.005', '', '', false,
    '1969-07-20', '1969-07-20 20:17:40'],
  [32767, 2147483647, '9223372036854775807', 3.0e10, 1e-300, '999999999.999', 'x'.repeat(20),
    'ünïcødé ✓', true, '9999-12-31', '2000-01-01 00:00:00'],
  Array(COLUMNS.length).fill(null),
];

function expected(row) {
  return row.map((v, i) => {
    if (v === null) return null;
    const name = COLUMNS[i][0];
    if (name === 'c_date') return new Date(`${v}T00:00:00Z`);
    if (name === 'c_ts') return new Date(`${v.replace(' ', 'T').slice(0, 23)}Z`);
    return v;
  });
}

function sameValue(got, want, what) {
  if (want instanceof Date) {
    assert.ok(got instanceof Date, `${what}: got ${got}, want a Date`);
    assert.equal(got.getTime(), want.getTime(), what);
  } else if (typeof want === 'number' && /c_real|c_double/.test(what)) {
    assert.ok(Math.abs(got - want) <= Math.abs(want) * 1e-6, `${what}: got ${got}, want ${want}`);
  } else {
    assert.deepEqual(got, want, what);
  }
}

async function main() {
  const suffix = crypto.randomBytes(5).toString('hex');
  const t = `node_types_${suffix}`;
  const tx = `node_tx_${suffix}`;
  const steps = [];
  const step = (name, fn) => steps.push([name, fn]);
  const client = new Client(config);

  step('connect and create table', async () => {
    await client.connect();
    const cols = COLUMNS.map((c) => `${c[0]} ${c[1]}`).join(', ');
    await client.query(`CREATE TABLE ${t} (id INT NOT NULL, ${cols})`);
  });

  step('insert with $n parameters', async () => {
    const ph = COLUMNS.map((_, i) => `$${i + 2}`).join(', ');
    for (const [i, row] of ROWS.entries()) {
      const res = await client.query(`INSERT INTO ${t} (id, ${NAMES}) VALUES ($1, ${ph})`, [i, ...row]);
      assert.equal(res.command, 'INSERT', 'command');
      assert.equal(res.rowCount, 1, 'rowCount');
    }
  });

  step('select every type (text results)', async () => {
    const res = await client.query({ text: `SELECT ${NAMES} FROM ${t} ORDER BY id`, rowMode: 'array' });
    assert.deepEqual(res.fields.map((f) => f.name), COLUMNS.map((c) => c[0]), 'field names');
    assert.deepEqual(res.fields.map((f) => f.dataTypeID), COLUMNS.map((c) => c[2]), 'type OIDs');
    assert.equal(res.rows.length, ROWS.length, 'row count');
    for (const [r, row] of res.rows.entries()) {
      const want = expected(ROWS[r]);
      row.forEach((v, c) => sameValue(v, want[c], `row ${r} ${COLUMNS[c][0]}`));
    }
  });

  step('named prepared statement reused', async () => {
    for (let i = 0; i < 8; i++) {
      const r = i % ROWS.length;
      const res = await client.query({
        name: `by_id_${suffix}`,
        text: `SELECT c_int, c_num, c_text FROM ${t} WHERE id = $1`,
        values: [r],
      });
      assert.equal(res.rows.length, 1, `execution ${i}: one row`);
      assert.equal(res.rows[0].c_int, ROWS[r][1], `execution ${i}: c_int`);
      assert.equal(res.rows[0].c_num, ROWS[r][5], `execution ${i}: c_num`);
      assert.equal(res.rows[0].c_text, ROWS[r][7], `execution ${i}: c_text`);
    }
    const typed = await client.query(
      `SELECT count(*)::int AS n FROM ${t} WHERE c_ts >= $1 AND c_num > $2 AND c_bool = $3`,
      [new Date('2000-01-01T00:00:00Z'), '0', true]);
    assert.equal(typed.rows[0].n, 2, 'typed parameters');
  });

  step('transactions', async () => {
    await client.query(`CREATE TABLE ${tx} (a INT)`);
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${tx} VALUES (1)`);
    await client.query('ROLLBACK');
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${tx} VALUES (2), (3)`);
    const other = new Client(config);
    await other.connect();
    try {
      const hidden = await other.query(`SELECT count(*)::int AS n FROM ${tx}`);
      assert.equal(hidden.rows[0].n, 0, 'uncommitted rows hidden from others');
      await client.query('COMMIT');
      const seen = await other.query(`SELECT a FROM ${tx} ORDER BY a`);
      assert.deepEqual(seen.rows.map((r) => r.a), [2, 3], 'rolled back, then committed');
    } finally {
      await other.end();
    }
  });

  step('pool of concurrent clients', async () => {
    const pool = new Pool({ ...config, max: 8 });
    try {
      const results = await Promise.all(Array.from({ length: 32 }, (_, i) => pool.query(
        `SELECT count(*)::int AS n, $1::int AS i FROM ${t} WHERE id < $1`, [i % 5])));
      results.forEach((res, i) => {
        assert.equal(res.rows[0].i, i % 5, `query ${i}: parameter echoed`);
        assert.equal(res.rows[0].n, Math.min(i % 5, ROWS.length), `query ${i}: count`);
      });
    } finally {
      await pool.end();
    }
  });

  step('errors keep the connection', async () => {
    await assert.rejects(client.query(`SELECT * FROM no_such_table_${suffix}`),
      (e) => e.code === '42P01', 'undefined table: 42P01');
    await assert.rejects(client.query('SELECT 1/0'), (e) => e.code === '22012', 'division by zero: 22012');
    await assert.rejects(client.query(`INSERT INTO ${t} (id) VALUES (NULL)`),
      (e) => e.code === '23502', 'NULL into NOT NULL: 23502');
    const res = await client.query(`SELECT count(*)::int AS n FROM ${t}`);
    assert.equal(res.rows[0].n, ROWS.length, 'the failed INSERT changed nothing');
    await client.query(`DROP TABLE ${t}`);
    await client.query(`DROP TABLE ${tx}`);
  });

  for (const [name, fn] of steps) {
    try {
      await fn();
    } catch (e) {
      const what = e.code ? `${e.message} (SQLSTATE ${e.code})` : e.message;
      console.error(`FAIL node-postgres: ${name}: ${what}`);
      process.exit(1);
    }
  }
  await client.end();
  console.log(`node-postgres: all ${steps.length} steps passed (pg ${require('pg/package.json').version})`);
}

main().catch((e) => {
  console.error(`FAIL node-postgres: ${e.stack || e}`);
  process.exit(1);
});
