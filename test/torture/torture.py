#!/usr/bin/python3
"""Hostile run over retail_mid (issue 19): every routine of schema retail_mid (functions, procedures, aggregates) and
the input function of every base type of the extension, listed from the catalog, called with bad-value families
(NULLs, empty, huge, NaN/+-Infinity, extreme dates, junk text, huge arrays, mutated serialised states), aggregates
also as window functions, with NULL-first groups and under forced-parallel plans. Each call runs in its own
transaction with a statement_timeout, as a non-superuser admin (a retail_mid_admin member) and as a superuser.

Fails (exit 1) on a server crash (connection lost), SQLSTATE XX000, or a call running past the time limit.
Prints counts per class. Deterministic: a fixed seed picks the sample.

  test/torture/torture.py [--seed 19] [--per-routine N] [--timeout-ms 10000] [--db retail_mid_torture]
Connection from the PG* environment (test/with_cluster.sh sets it). Needs python3-psycopg2 (Debian).
"""
import argparse, collections, os, random, sys, time
import psycopg2, psycopg2.extensions

# Calls the harness must not make, with the reason. Everything else in the schema is called.
DENY = {
    # none of the extension's routines drops the extension or terminates backends; keep the list explicit anyway
    'generate_synthetic': 'generates data on the scale it is asked for (millions of rows for huge arguments): '
                          'a load generator, not a bad-input path; called with small arguments in the setup',
}
PARALLEL = ["SET LOCAL force_parallel_mode = on", "SET LOCAL parallel_setup_cost = 0", "SET LOCAL parallel_tuple_cost = 0",
            "SET LOCAL min_parallel_table_scan_size = 0", "SET LOCAL max_parallel_workers_per_gather = 2",
            "SET LOCAL parallel_leader_participation = off"]

INTS = ['0', '-1', '1', '2147483647', '-2147483648']
FLOATS = ["'NaN'", "'Infinity'", "'-Infinity'", '1e308', '-1e308', '0', '-0.0', '5e-324']
TEXTS = ["''", "repeat('x', 2000000)", "E'\\\\x01\\\\x7f junk \\u00e9\\u4e2d'", "'''; DROP TABLE x; --'", "'null'", "'{}'",
         "'%s%n'", "'  '", "'retail_mid.ods_order'", "'pg_authid'", "'/etc/passwd'", "repeat('a/', 300)", "'NaN'",
         "'[]'", "'1e999'"]
DATES = ["'infinity'", "'-infinity'", "'4713-01-01 BC'", "'5874897-12-31'", "'0001-01-01'", "'2024-02-29'"]
TSS = ["'infinity'", "'-infinity'", "'4713-01-01 00:00 BC'", "'294276-12-31 23:59:59'", "'2000-01-01'"]


def type_values(t):
    """(a normal value, [bad values]) of a type, as SQL expressions (cast added by the caller)."""
    base = t[:-2] if t.endswith('[]') else t
    if t.endswith('[]'):
        n, bad = type_values(base)
        return ("ARRAY[%s]" % n, ["'{}'", "ARRAY[NULL]", "ARRAY[%s, NULL]" % n, "array_fill(%s::%s, ARRAY[200000])" % (n, base),
                                  "'{{1,2},{3,4}}'" if base in ('integer', 'bigint', 'smallint', 'double precision', 'numeric') else "'{}'"]
                + ["ARRAY[%s]" % b for b in bad[:4]])
    if t in ('integer', 'bigint', 'smallint'):
        big = {'smallint': ['32767', '-32768'], 'integer': [], 'bigint': ['9223372036854775807', '-9223372036854775808']}[t]
        return ('1', INTS + big)
    if t in ('double precision', 'real'):
        return ('1.5', FLOATS)
    if t == 'numeric':
        return ('1.5', FLOATS + ["'1e1000'", "'-1e-1000'"])
    if t in ('text', 'character varying', 'name', 'character', '"char"', 'cstring', 'unknown'):
        return ("'a'", TEXTS)
    if t == 'date':
        return ("'2024-01-01'", DATES)
    if t.startswith('timestamp'):
        return ("'2024-01-01 00:00'", TSS)
    if t == 'interval':
        return ("'1 day'", ["'178000000 years'", "'-178000000 years'", "'0'", "'-1 day'"])
    if t == 'boolean':
        return ('true', ['false'])
    if t in ('jsonb', 'json'):
        return ("'{}'", ["'[]'", "'null'", "'\"x\"'", "'1e999'", "repeat('[', 5000) || repeat(']', 5000)",
                         "'{\"a\": {\"b\": [1, \"x\", null, 1e308]}}'", "'{\"min\": \"NaN\", \"columns\": [null]}'"])
    if t == 'regclass':
        return ("'retail_mid.ods_order'", ['0', "'pg_class'", "'pg_authid'", "'retail_mid.customer_key'"])
    if t in ('oid', 'regproc', 'regprocedure', 'regtype', 'regrole', 'regnamespace'):
        return ('0', ['0', '4294967295'])
    if t == 'bytea':
        return ("'\\x00'", ["''", "'\\xdeadbeef'", "'\\x3b3000000100000000000000'", "decode(repeat('ff', 100000), 'hex')"])
    if t == 'tid':
        return ("'(0,1)'", ["'(4294967295,65535)'", "'(0,0)'"])
    if t == 'retail_mid.rbitmap':
        return ("'{1,2,3}'", ["'{}'", "'{2147483647}'", "'{0}'", "retail_mid.rb_range(0, 2000000)"])
    if t in ('anyelement', '"any"', 'anynonarray', 'anycompatible'):
        return ('1', ["'x'::text", 'NULL::int'])
    if t in ('anyarray', 'anycompatiblearray'):
        return ('ARRAY[1]', ["'{}'::int[]"])
    return (None, [])        # composite and other types: NULL only


def cast(v, t):
    if t in ('"any"', 'anyelement', 'anynonarray', 'anycompatible', 'anyarray', 'anycompatiblearray'):
        return v
    return '(%s)::%s' % (v, t)


class Harness:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.counts = collections.Counter()
        self.failures = []

    def connect(self, user):
        for _ in range(60):
            try:
                c = psycopg2.connect(dbname=self.a.db, user=user, application_name='torture')
                c.set_session(autocommit=False)
                cur = c.cursor()
                cur.execute("SET statement_timeout = %d" % self.a.timeout_ms)
                cur.execute("SET client_min_messages = error")
                c.commit()
                return c
            except psycopg2.OperationalError:
                time.sleep(1)
        sys.exit('torture: cannot connect as %s' % user)

    def run(self, conn, sql, role, label, parallel=False):
        """One call in its own transaction; returns the (possibly new) connection."""
        self.counts[(role, 'calls')] += 1
        cur = conn.cursor()
        t0 = time.time()
        try:
            if parallel:
                for s in PARALLEL:
                    cur.execute(s)
            cur.execute(sql)
            if cur.description:
                cur.fetchmany(10)
            self.counts[(role, 'ok')] += 1
        except psycopg2.Error as e:
            code = e.pgcode
            if code is None or conn.closed:
                self.counts[(role, 'crash')] += 1
                self.failures.append('CRASH (%s) %s: %s\n    %s' % (role, label, str(e).strip()[:200], sql[:600]))
                try:
                    conn.close()
                except Exception:
                    pass
                time.sleep(2)
                return self.connect(self.user_of[role])
            if code == 'XX000':
                self.counts[(role, 'XX000')] += 1
                self.failures.append('XX000 (%s) %s: %s\n    %s' % (role, label, e.pgerror.strip()[:300], sql[:600]))
            elif code == '57014':
                self.counts[(role, 'timeout')] += 1
                self.failures.append('TIMEOUT (%s, %.1fs) %s\n    %s' % (role, time.time() - t0, label, sql[:600]))
            else:
                self.counts[(role, 'error ' + code[:2])] += 1
        finally:
            try:
                conn.rollback()
            except psycopg2.Error:
                pass
        return conn

    def catalog(self, conn):
        cur = conn.cursor()
        cur.execute("""
            SELECT p.oid::regprocedure::text, p.proname, p.prokind, p.proretset,
                   array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY u(t, o) ORDER BY o),
                   p.provariadic <> 0, format_type(p.prorettype, NULL),
                   coalesce(a.aggserialfn <> 0, false), coalesce(a.aggcombinefn <> 0, false)
              FROM pg_proc p LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
             WHERE p.pronamespace = 'retail_mid'::regnamespace
             ORDER BY 1""")
        routines = cur.fetchall()
        cur.execute("""
            SELECT format_type(t.oid, NULL), t.typinput::regproc::text
              FROM pg_type t JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
              JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'retail_mid'
             WHERE t.typtype = 'b' ORDER BY 1""")
        types = cur.fetchall()
        conn.rollback()
        return routines, types

    def calls_for(self, r):
        sig, name, kind, retset, args, variadic, rettype, has_serial, has_combine = r
        if name in DENY or rettype in ('trigger', 'event_trigger'):
            return []
        n = len(args)
        vals = [type_values(t) for t in args]
        normal = ['NULL' if v[0] is None else v[0] for v in vals]
        vectors = [['NULL'] * n]                                    # all NULL
        parallel_ok = {0}                                           # vectors also run under forced-parallel plans
        for i, (nv, bad) in enumerate(vals):
            for j, b in enumerate(['NULL'] + bad):                 # one argument bad, the others normal
                v = list(normal); v[i] = b; vectors.append(v)
                if j == 0 or (bad and j == 1 + self.rng.randrange(len(bad))):
                    parallel_ok.add(len(vectors) - 1)              # per argument: NULL and one bad value (seeded)
        if n > 1:
            vectors.append(normal)
            parallel_ok.add(len(vectors) - 1)
        out = []
        for vi, v in enumerate(vectors):
            exprs = [cast(x, t) if t != 'internal' else 'NULL::internal' for x, t in zip(v, args)]
            if 'internal' in args:
                if any(t == 'bytea' for t in args):     # deserial functions: fed real-looking and junk bytes
                    out.append(('call', 'SELECT %s(%s)' % ('retail_mid.' + name, ', '.join(exprs))))
                continue
            fn = 'retail_mid.%s' % name
            if kind == 'p':
                out.append(('call', 'CALL %s(%s)' % (fn, ', '.join(exprs))))
            elif kind == 'a':
                cols = ', '.join('c%d' % i for i in range(n))
                # a NULL-first group, then the bad row, then normal rows; also as a window function and in parallel
                rows = ["(%s)" % ', '.join('NULL::%s' % t if t not in ('"any"',) else 'NULL::int' for t in args),
                        "(%s)" % ', '.join(exprs),
                        "(%s)" % ', '.join(cast(x, t) for x, t in zip(normal, args))] * 2
                src = "(VALUES %s) v(%s)" % (', '.join(rows), cols)
                out.append(('agg', 'SELECT %s(%s) FROM %s' % (fn, cols, src)))
                out.append(('window', 'SELECT %s(%s) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM %s' % (fn, cols, src)))
                out.append(('window', 'SELECT %s(%s) OVER (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM %s' % (fn, cols, src)))
                pexprs = ['CASE WHEN g.i %% 5 = 0 THEN NULL WHEN g.i %% 7 = 0 THEN %s ELSE %s END' % (e, cast(nn, t))
                          for e, nn, t in zip(exprs, normal, args)]
                if vi in parallel_ok:
                    out.append(('parallel', 'SELECT g.i %% 3, %s(%s) FROM torture.rows g GROUP BY 1' % (fn, ', '.join(pexprs))))
                    out.append(('parallel', 'SELECT %s(%s) FROM torture.rows g' % (fn, ', '.join(pexprs))))
            else:
                q = 'SELECT %s(%s)' % (fn, ', '.join(exprs))
                if retset:
                    q = 'SELECT * FROM %s(%s) LIMIT 10' % (fn, ', '.join(exprs))
                out.append(('call', q))
        return out

    def mutations(self, conn, types):
        """Mutated serialised states: a real value's bytes (rb_to_bytea / the text output) flipped and truncated,
        fed to the type's input, rb_from_bytea and the aggregates that combine such values."""
        out = []
        cur = conn.cursor()
        for tname, inp in types:
            for seed_sql in ["SELECT %s::text FROM (SELECT retail_mid.rb_build(array_agg(i)) AS x FROM generate_series(1, 5000, 3) i) s",
                             "SELECT (retail_mid.rb_range(0, 70000) OPERATOR(retail_mid.|) retail_mid.rb_build(ARRAY[100000, 2000000]))::text"]:
                try:
                    cur.execute(seed_sql % 'x' if '%s' in seed_sql else seed_sql)
                    text = cur.fetchone()[0]
                except psycopg2.Error:
                    conn.rollback(); continue
                for _ in range(self.a.mutations):
                    s = list(text[:4000])
                    op = self.rng.randrange(4)
                    if op == 0 and s:
                        s = s[:self.rng.randrange(len(s))]
                    else:
                        for _ in range(self.rng.randint(1, 4)):
                            if s:
                                s[self.rng.randrange(len(s))] = self.rng.choice('0123456789,{}- x\\')
                    lit = ''.join(s).replace("'", "''")
                    out.append(('mutate', "SELECT '%s'::%s" % (lit, tname)))
        try:
            cur.execute("SELECT retail_mid.rb_to_bytea(retail_mid.rb_range(0, 70000) OPERATOR(retail_mid.|) retail_mid.rb_build(ARRAY[1, 100000, 2000000]))")
            raw = bytes(cur.fetchone()[0])
            for _ in range(self.a.mutations * 3):
                b = bytearray(raw)
                op = self.rng.randrange(3)
                if op == 0:
                    b = b[:self.rng.randrange(len(b))]
                elif op == 1:
                    for _ in range(self.rng.randint(1, 8)):
                        b[self.rng.randrange(len(b))] = self.rng.randrange(256)
                else:
                    i = self.rng.randrange(min(64, len(b)))
                    b[i] ^= 1 << self.rng.randrange(8)
                h = b.hex()
                out.append(('mutate', "SELECT retail_mid.rb_cardinality(retail_mid.rb_from_bytea('\\x%s'))" % h))
                out.append(('mutate', "SELECT retail_mid.rb_or_agg(x) FROM (VALUES (retail_mid.rb_from_bytea('\\x%s')), ('{1}'::retail_mid.rbitmap)) v(x)" % h))
        except psycopg2.Error:
            pass
        conn.rollback()
        return out

    def main(self):
        a = self.a
        su = self.connect(a.superuser)
        routines, types = self.catalog(su)
        plan = []
        for r in routines:
            calls = self.calls_for(r)
            if a.per_routine and len(calls) > a.per_routine:
                calls = self.rng.sample(calls, a.per_routine)
            plan += [(r[0], k, q) for k, q in calls]
        for tname, inp in types:
            for v in ['NULL'] + TEXTS + ["'{'", "'{1,'", "'{-1}'", "'{2147483648}'", "'{1,2,3'", "'{1}}'", "'{ , }'"]:
                plan.append((inp, 'typein', 'SELECT %s::%s' % (v, tname)))
        plan += [('mutation', k, q) for k, q in self.mutations(su, types)]
        if a.max_calls and len(plan) > a.max_calls:
            plan = self.rng.sample(plan, a.max_calls)
        if a.dry_run:
            print(collections.Counter(k for _, k, _ in plan)); return 0
        print('torture: %d routines, %d base types, %d calls per role (seed %d)' % (len(routines), len(types), len(plan), a.seed), flush=True)
        self.user_of = {'superuser': a.superuser, 'admin': a.admin}
        for role in ('admin', 'superuser'):
            conn = su if role == 'superuser' else self.connect(a.admin)
            t0 = time.time()
            for i, (label, kind, sql) in enumerate(plan):
                conn = self.run(conn, sql, role, '%s [%s]' % (label, kind), parallel=(kind == 'parallel'))
                self.counts[(role, 'kind ' + kind)] += 1
                if (i + 1) % 1000 == 0:
                    print('torture: %s %d/%d calls, %.0fs' % (role, i + 1, len(plan), time.time() - t0), flush=True)
        classes = sorted({k for _, k in self.counts})
        for role in ('admin', 'superuser'):
            print('%s: %s' % (role, ', '.join('%s=%d' % (k, self.counts[(role, k)]) for k in classes if self.counts[(role, k)])))
        for k in ('crash', 'XX000', 'timeout'):
            print('total %s=%d' % (k, sum(self.counts[(r, k)] for r in ('admin', 'superuser'))))
        for f in self.failures[:200]:
            print(f)
        return 1 if self.failures else 0


def setup(a):
    c = psycopg2.connect(dbname='postgres', user=a.superuser)
    c.autocommit = True
    cur = c.cursor()
    cur.execute("DROP DATABASE IF EXISTS %s" % a.db)
    cur.execute("CREATE DATABASE %s" % a.db)
    c.close()
    c = psycopg2.connect(dbname=a.db, user=a.superuser)
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("CREATE EXTENSION retail_mid CASCADE")
    cur.execute("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) THEN "
                "EXECUTE format('CREATE ROLE %%I LOGIN IN ROLE retail_mid_admin', %s); END IF; END$$", (a.admin, a.admin))
    if a.data:
        cur.execute("SELECT retail_mid.generate_synthetic(seed => 19, customers => 200, days => 40, orders_per_day => 20, "
                    "stores => 3, skus => 50, start_date => '2024-01-01')")
    cur.execute("CREATE SCHEMA torture")
    cur.execute("CREATE TABLE torture.rows AS SELECT i FROM generate_series(1, 1000) i")
    cur.execute("ANALYZE torture.rows")
    cur.execute("GRANT USAGE ON SCHEMA torture TO PUBLIC; GRANT SELECT ON torture.rows TO PUBLIC")
    c.close()


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--seed', type=int, default=19)
    p.add_argument('--per-routine', type=int, default=0, help='calls sampled per routine (0: all)')
    p.add_argument('--max-calls', type=int, default=0, help='calls in all per role (0: all)')
    p.add_argument('--mutations', type=int, default=40)
    p.add_argument('--timeout-ms', type=int, default=20000)
    p.add_argument('--db', default='retail_mid_torture')
    p.add_argument('--superuser', default=os.environ.get('PGUSER', 'postgres'))
    p.add_argument('--admin', default='torture_admin')
    p.add_argument('--dry-run', action='store_true', help='print the plan\'s counts and stop')
    p.add_argument('--no-data', dest='data', action='store_false')
    a = p.parse_args()
    setup(a)
    sys.exit(Harness(a).main())
