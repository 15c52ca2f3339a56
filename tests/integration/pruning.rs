//! Block pruning: a filter on a sorted column reads only the blocks whose
//! min/max can match, and answers exactly as a full scan does.

use crate::common::{TestServer, rows, scalar};

/// (blocks read, blocks total) from the fuse_pruning line of EXPLAIN.
async fn blocks_read(c: &tokio_postgres::Client, query: &str) -> (usize, usize) {
    let plan = rows(c, &format!("EXPLAIN {query}")).await;
    let line = plan
        .iter()
        .find(|r| r[0].as_deref() == Some("fuse_pruning"))
        .and_then(|r| r[1].clone())
        .unwrap_or_else(|| panic!("no pruning line in {plan:?}"));
    // "table default.events: segments 1, blocks 2 of 20 read (18 pruned)"
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "blocks").unwrap();
    (
        words[at + 1].parse().unwrap(),
        words[at + 3].parse().unwrap(),
    )
}

#[tokio::test]
async fn range_filters_skip_blocks() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE events (id BIGINT NOT NULL, kind TEXT, at TIMESTAMP) ROW_PER_BLOCK = 1000",
    )
    .await
    .unwrap();
    // 20 blocks of 1000 sorted ids.
    c.batch_execute(
        "INSERT INTO events SELECT v, CASE WHEN v % 2 = 0 THEN 'even' ELSE 'odd' END,
                to_timestamp_seconds(1704067200 + v * 60)
         FROM generate_series(1, 20000) AS g(v) ORDER BY v",
    )
    .await
    .unwrap();
    let total = blocks_read(&c, "SELECT * FROM events").await;
    assert_eq!(total, (20, 20));

    let selective = "SELECT count(*), sum(id) FROM events WHERE id BETWEEN 4500 AND 5600";
    let (read, of) = blocks_read(&c, selective).await;
    assert_eq!(of, 20);
    assert_eq!(read, 2, "ids 4500..=5600 live in blocks 5 and 6");
    // Same answer as a scan that cannot prune (the filter is hidden from stats).
    let pruned = rows(&c, selective).await;
    let full = rows(
        &c,
        "SELECT count(*), sum(id) FROM events WHERE id + 0 BETWEEN 4500 AND 5600",
    )
    .await;
    assert_eq!(pruned, full);
    assert_eq!(pruned[0][0].as_deref(), Some("1101"));
    assert_eq!(
        blocks_read(
            &c,
            "SELECT count(*) FROM events WHERE id + 0 BETWEEN 4500 AND 5600"
        )
        .await
        .0,
        20
    );

    // Equality, timestamps and no match at all.
    assert_eq!(
        blocks_read(&c, "SELECT * FROM events WHERE id = 17777")
            .await
            .0,
        1
    );
    assert_eq!(
        blocks_read(
            &c,
            "SELECT * FROM events WHERE at < TIMESTAMP '2024-01-01 10:00:00'"
        )
        .await
        .0,
        1
    );
    assert_eq!(
        blocks_read(&c, "SELECT * FROM events WHERE id > 99999")
            .await
            .0,
        0
    );
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM events WHERE id > 99999").await,
        "0"
    );
    // A non-selective filter reads everything and is still right.
    assert_eq!(
        blocks_read(&c, "SELECT * FROM events WHERE kind = 'odd'")
            .await
            .0,
        20
    );
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM events WHERE kind = 'odd'").await,
        "10000"
    );
}

/// Text is read as string views (`query::table::plan_type`); its block
/// bounds must still prune reads, a DELETE's blocks and a kept plan's.
#[tokio::test]
async fn text_filters_skip_blocks() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE names (name VARCHAR(10) NOT NULL, n INT) ROW_PER_BLOCK = 1000;
         INSERT INTO names SELECT 'k' || lpad(v::text, 5, '0'), v
         FROM generate_series(1, 10000) AS g(v) ORDER BY v",
    )
    .await
    .unwrap();
    let lookup = "SELECT n FROM names WHERE name = 'k04321'";
    assert_eq!(blocks_read(&c, lookup).await, (1, 10));
    assert_eq!(scalar(&c, lookup).await, "4321");
    assert_eq!(
        blocks_read(&c, "SELECT n FROM names WHERE name >= 'k09001'")
            .await
            .0,
        1
    );
    let kept = c
        .prepare("SELECT n FROM names WHERE name = $1")
        .await
        .unwrap();
    let found = c.query(&kept, &[&"k07777"]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].get::<_, i32>(0), 7777);

    // A DELETE on text rewrites only the block holding its rows.
    let blocks = "SELECT block_location FROM fuse_block('default', 'names')";
    let before = rows(&c, blocks).await;
    c.batch_execute("DELETE FROM names WHERE name BETWEEN 'k00001' AND 'k00010'")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM names").await, "9990");
    let after = rows(&c, blocks).await;
    let kept_blocks = after.iter().filter(|b| before.contains(b)).count();
    assert_eq!((after.len(), kept_blocks), (10, 9));
    assert_eq!(blocks_read(&c, lookup).await, (1, 10));
}

/// `ROW_PER_PAGE` (Databend's table option) sets the rows of each data page,
/// which the page index narrows a lookup to; without it a page holds 8,192.
#[tokio::test]
async fn row_per_page_sets_the_pages_a_lookup_is_narrowed_to() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE small_pages (id BIGINT NOT NULL, v TEXT) ROW_PER_PAGE = 1000;
         CREATE TABLE default_pages (id BIGINT NOT NULL, v TEXT);
         INSERT INTO small_pages SELECT v, 'v' || v FROM generate_series(1, 10000) AS g(v) ORDER BY v;
         INSERT INTO default_pages SELECT * FROM small_pages ORDER BY id;",
    )
    .await
    .unwrap();
    for (table, pages) in [("small_pages", 10), ("default_pages", 2)] {
        let query = format!("SELECT v FROM {table} WHERE id = 4321");
        assert_eq!(scalar(&c, &query).await, "v4321");
        let plan: String = rows(&c, &format!("EXPLAIN ANALYZE {query}"))
            .await
            .into_iter()
            .filter_map(|r| r[1].clone())
            .collect();
        let expected = format!("page_index_pages_pruned={pages} total \u{2192} 1 matched");
        assert!(
            plan.contains(&expected),
            "{table}: no {expected:?} in {plan}"
        );
    }
    let err = c
        .batch_execute("CREATE TABLE bad_pages (id INT) ROW_PER_PAGE = 0")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE)
    );
}

/// A join whose build side holds few keys drops the probe side's other rows
/// right above their scan, before the aggregate under the join sees them
/// (TPC-H Q17's shape); the answer is the join's.
#[tokio::test]
async fn few_join_keys_filter_rows_before_an_aggregate() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE parts (id INT NOT NULL, brand TEXT);
         CREATE TABLE items (part INT NOT NULL, qty INT NOT NULL);
         INSERT INTO parts SELECT v, 'b' || (v % 100) FROM generate_series(0, 999) AS g(v);
         INSERT INTO items SELECT v % 1000, v % 7 FROM generate_series(0, 19999) AS g(v);",
    )
    .await
    .unwrap();
    // Brand b7: parts 7, 107, ..., 907, each in 20 items.
    let query = "SELECT count(*), sum(a.total) FROM parts p
                 JOIN (SELECT part, sum(qty) AS total FROM items GROUP BY part) a ON a.part = p.id
                 WHERE p.brand = 'b7'";
    let expected: i64 = (0..20_000i64).filter(|v| v % 100 == 7).map(|v| v % 7).sum();
    assert_eq!(
        rows(&c, query).await,
        vec![vec![Some("10".to_string()), Some(expected.to_string())]]
    );
    let plan = plan_lines(&c, &format!("EXPLAIN ANALYZE {query}")).await;
    let filter = plan
        .iter()
        .find(|l| l.contains("FilterExec: in_list_only(DynamicFilter"))
        .unwrap_or_else(|| panic!("no join-key filter above the items scan: {plan:#?}"));
    assert!(
        filter.contains("output_rows=200,"),
        "the 200 items of the 10 parts pass, the other 19,800 do not: {filter}"
    );
}

/// The lines of the plans an `EXPLAIN [ANALYZE]` statement prints.
async fn plan_lines(c: &tokio_postgres::Client, explain: &str) -> Vec<String> {
    rows(c, explain)
        .await
        .into_iter()
        .filter_map(|r| r[1].clone())
        .flat_map(|p| p.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// The scan (DataSourceExec) line of `query`'s physical plan.
async fn scan_line(c: &tokio_postgres::Client, query: &str) -> String {
    plan_lines(c, &format!("EXPLAIN {query}"))
        .await
        .into_iter()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("no scan in the plan of {query}"))
}

/// A scan's predicate reaches its Parquet source once (fusegate's filters
/// and DataFusion's filter pushdown would each give it), and a block big
/// enough (10 MiB) for DataFusion to split into byte ranges, one per
/// partition, answers whole through either kind of plan.
#[tokio::test]
async fn a_split_block_is_pruned_with_its_predicate_once() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE wide (id BIGINT NOT NULL, a TEXT, b TEXT);
         INSERT INTO wide SELECT v, md5(v::text), md5((v + 1)::text)
             FROM generate_series(1, 300000) AS g(v) ORDER BY v;
         INSERT INTO wide VALUES (300001, 'x', 'y');",
    )
    .await
    .unwrap();
    let biggest: i64 = scalar(
        &c,
        "SELECT max(file_size) FROM fuse_block('default', 'wide')",
    )
    .await
    .parse()
    .unwrap();
    assert!(
        biggest > 10 << 20,
        "the first block is over 10 MiB: {biggest}"
    );

    let query = "SELECT count(*), min(a) FROM wide WHERE id BETWEEN 1000 AND 2000";
    assert_eq!(
        rows(&c, query).await,
        vec![vec![
            Some("1001".into()),
            Some("0004d0b59e19461ff126e3a08a814c33".into())
        ]]
    );
    assert_eq!(blocks_read(&c, query).await, (1, 2));
    let scan = scan_line(&c, query).await;
    assert!(
        scan.contains("predicate=id@0 >= 1000 AND id@0 <= 2000,"),
        "the predicate once: {scan}"
    );
    // Most of the big block: both of its byte ranges.
    assert_eq!(
        scalar(
            &c,
            "SELECT count(*) FROM wide WHERE id BETWEEN 2 AND 299999"
        )
        .await,
        "299998"
    );

    // A kept lookup, whose plan covers both blocks and is narrowed to one
    // with each execution's value: rows in each part of the big block.
    let lookup = c.prepare("SELECT a FROM wide WHERE id = $1").await.unwrap();
    for id in [1i64, 150_000, 299_999, 300_001] {
        let expected = match id {
            300_001 => "x".to_string(),
            _ => scalar(&c, &format!("SELECT md5('{id}')")).await,
        };
        let rows = c.query(&lookup, &[&id]).await.unwrap();
        let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(found, vec![expected], "id {id}");
    }
}

/// The first column of `rows`, as ids.
fn ids(rows: Vec<tokio_postgres::Row>) -> Vec<i64> {
    rows.iter().map(|r| r.get(0)).collect()
}

/// Bytes the server has read from storage so far.
fn bytes_read(server: &TestServer) -> f64 {
    crate::metrics::scrape(server)
        .lines()
        .filter(|l| {
            l.starts_with("fusegate_opendal_operation_bytes_sum")
                && l.contains(r#"operation="read""#)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// A prepared statement's physical plan is made once and kept; its
/// parameters still prune blocks, at each execution with that execution's
/// values, and it sees what later writes commit.
#[tokio::test]
async fn kept_prepared_plans_prune_with_each_executions_values() {
    let server = TestServer::start_with(&["--metrics-listen", "127.0.0.1:0"]);
    let mut c = server.client().await;
    c.batch_execute(
        "CREATE TABLE events (id BIGINT NOT NULL, kind TEXT) ROW_PER_BLOCK = 1000;
         INSERT INTO events SELECT v, 'k' || v FROM generate_series(1, 20000) AS g(v) ORDER BY v",
    )
    .await
    .unwrap();
    let lookup = c
        .prepare("SELECT id, kind FROM events WHERE id = $1")
        .await
        .unwrap();
    for id in [1i64, 1500, 17777, 20000, 9001, 1500] {
        let got = c.query(&lookup, &[&id]).await.unwrap();
        assert_eq!(got.len(), 1, "id {id}");
        assert_eq!(got[0].get::<_, i64>(0), id);
        assert_eq!(got[0].get::<_, String>(1), format!("k{id}"));
    }
    assert!(c.query(&lookup, &[&0i64]).await.unwrap().is_empty());
    assert!(c.query(&lookup, &[&None::<i64>]).await.unwrap().is_empty());

    // Pruned at execution: far fewer bytes than a lookup that cannot prune.
    let unprunable = c
        .prepare("SELECT id, kind FROM events WHERE id + 0 = $1")
        .await
        .unwrap();
    assert_eq!(c.query(&unprunable, &[&3i64]).await.unwrap().len(), 1);
    let before = bytes_read(&server);
    for id in (1..=10i64).map(|i| i * 1999) {
        assert_eq!(c.query(&lookup, &[&id]).await.unwrap().len(), 1);
    }
    let pruned = bytes_read(&server) - before;
    let before = bytes_read(&server);
    for id in (1..=10i64).map(|i| i * 1999) {
        assert_eq!(c.query(&unprunable, &[&id]).await.unwrap().len(), 1);
    }
    let full = bytes_read(&server) - before;
    assert!(
        pruned * 5.0 < full,
        "10 lookups read {pruned} bytes with pruning, {full} without"
    );

    // Rows committed after the plan was kept are found.
    c.batch_execute("INSERT INTO events VALUES (20001, 'late')")
        .await
        .unwrap();
    let got = c.query(&lookup, &[&20001i64]).await.unwrap();
    assert_eq!(got[0].get::<_, String>(1), "late");

    // Two portals of one statement at once: each reads with its own values.
    let range = c
        .prepare("SELECT id FROM events WHERE id BETWEEN $1 AND $2 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(c.query(&range, &[&5i64, &6i64]).await.unwrap().len(), 2);
    let tx = c.transaction().await.unwrap();
    let first = tx.bind(&range, &[&1i64, &10i64]).await.unwrap();
    let head = ids(tx.query_portal(&first, 3).await.unwrap());
    assert_eq!(head, vec![1, 2, 3]);
    let other = ids(tx.query(&range, &[&15001i64, &15003i64]).await.unwrap());
    assert_eq!(other, vec![15001, 15002, 15003]);
    let rest = ids(tx.query_portal(&first, 100).await.unwrap());
    assert_eq!(rest, (4..=10).collect::<Vec<i64>>());
    tx.commit().await.unwrap();

    // Aggregates and sorts run again with each execution's values.
    let agg = c
        .prepare("SELECT count(*), min(id), max(kind) FROM events WHERE id > $1")
        .await
        .unwrap();
    for (from, count, min) in [
        (19990i64, 11i64, 19991i64),
        (100, 19901, 101),
        (19990, 11, 19991),
    ] {
        let row = c.query_one(&agg, &[&from]).await.unwrap();
        assert_eq!(
            (row.get::<_, i64>(0), row.get::<_, i64>(1)),
            (count, min),
            "id > {from}"
        );
    }
    let top = c
        .prepare("SELECT id FROM events WHERE id < $1 ORDER BY id DESC")
        .await
        .unwrap();
    for below in [4i64, 7, 3] {
        let got = ids(c.query(&top, &[&below]).await.unwrap());
        assert_eq!(got, (1..below).rev().collect::<Vec<i64>>());
    }

    let log = server.log();
    assert_eq!(
        log.matches("physical plan is kept").count(),
        5,
        "kept at their second execution: the lookup, the unprunable lookup, the range, \
         the aggregate and the sort (the lookup planned anew after the INSERT ran once since)\n{log}"
    );

    // A plan with now() is not kept: each execution has its own time.
    let clock = c
        .prepare("SELECT CAST(now() AS TEXT) FROM events WHERE id = $1")
        .await
        .unwrap();
    let first: String = c.query_one(&clock, &[&1i64]).await.unwrap().get(0);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second: String = c.query_one(&clock, &[&1i64]).await.unwrap().get(0);
    assert_ne!(first, second);
    assert!(server.log().contains("planned at every execution"));
}

/// A read-only query whose text comes again reuses its plan, as a prepared
/// statement does (`session::plans`): by the simple protocol, or an unnamed
/// statement per execution as most drivers send. It is planned again when a
/// commit, USE or SET could change what it reads; plans of table functions
/// are never reused (their rows are fixed when they are planned).
#[tokio::test]
async fn repeated_queries_reuse_their_plans_while_they_hold() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE events (id BIGINT NOT NULL, kind TEXT) ROW_PER_BLOCK = 1000;
         INSERT INTO events SELECT v, 'k' || v FROM generate_series(1, 20000) AS g(v) ORDER BY v;
         CREATE DATABASE other;
         CREATE TABLE other.events (id BIGINT NOT NULL, kind TEXT);
         INSERT INTO other.events VALUES (4600, 'other')",
    )
    .await
    .unwrap();
    let kept = |server: &TestServer| server.log().matches("physical plan is kept").count();
    let range = "SELECT count(*), min(kind) FROM events WHERE id BETWEEN 4500 AND 5600";
    for _ in 0..4 {
        assert_eq!(
            rows(&c, range).await,
            [[Some("1101".into()), Some("k4500".into())]]
        );
    }
    assert_eq!(kept(&server), 1, "kept at its second run");
    let lookup = "SELECT kind FROM events WHERE id = $1";
    for id in [7i64, 19999, 7, 12345] {
        let got = c.query(lookup, &[&id]).await.unwrap();
        assert_eq!(got[0].get::<_, String>(0), format!("k{id}"));
    }
    assert_eq!(kept(&server), 2, "the unnamed statements share one plan");

    // A commit: the rows it wrote are read.
    c.batch_execute("INSERT INTO events VALUES (5000, 'a5000')")
        .await
        .unwrap();
    assert_eq!(
        rows(&c, range).await,
        [[Some("1102".into()), Some("a5000".into())]]
    );
    let got = c.query(lookup, &[&5000i64]).await.unwrap();
    assert_eq!(got.len(), 2);

    // USE: the same text names another table, in a query and in a statement
    // prepared before.
    let prepared = c
        .prepare("SELECT count(*) FROM events WHERE id > $1")
        .await
        .unwrap();
    for _ in 0..2 {
        let n: i64 = c.query_one(&prepared, &[&4000i64]).await.unwrap().get(0);
        assert_eq!(n, 16001);
    }
    c.batch_execute("USE other").await.unwrap();
    assert_eq!(
        rows(&c, range).await,
        [[Some("1".into()), Some("other".into())]]
    );
    let n: i64 = c.query_one(&prepared, &[&4000i64]).await.unwrap().get(0);
    assert_eq!(n, 1);
    c.batch_execute("USE default").await.unwrap();
    assert_eq!(rows(&c, range).await[0][0].as_deref(), Some("1102"));

    // Time travel to a moment relative to now() reads that moment at each run.
    c.batch_execute("CREATE TABLE moments (a INT); INSERT INTO moments VALUES (1)")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    c.batch_execute("INSERT INTO moments VALUES (2)")
        .await
        .unwrap();
    let travel = "SELECT count(*) FROM moments AT (TIMESTAMP => now() - INTERVAL '1 second')";
    assert_eq!(scalar(&c, travel).await, "1");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(scalar(&c, travel).await, "2");
}

/// A server reporting its storage reads, with `events(id, kind)` of `rows`
/// rows sorted by id: 50,000-row blocks of 1,000-row pages.
async fn events_with_metrics(rows: u32) -> (TestServer, tokio_postgres::Client) {
    let server = TestServer::start_with(&["--metrics-listen", "127.0.0.1:0"]);
    let c = server.client().await;
    c.batch_execute(&format!(
        "CREATE TABLE events (id BIGINT NOT NULL, kind TEXT) ROW_PER_BLOCK = 50000 ROW_PER_PAGE = 1000;
         INSERT INTO events SELECT v, 'k' || v FROM generate_series(1, {rows}) AS g(v) ORDER BY v"
    ))
    .await
    .unwrap();
    (server, c)
}

/// A query whose filters narrow it to a few of a table's blocks keeps the
/// pages it reads, as a kept plan does, so its text run again reads nothing
/// from storage; a scan of every block does not fill the cache.
#[tokio::test]
async fn selective_scans_keep_their_pages_and_whole_scans_do_not() {
    let (server, c) = events_with_metrics(150000).await;
    // A range by literals, through the simple protocol: 1 of 3 blocks.
    let range = "SELECT count(*), max(kind) FROM events WHERE id BETWEEN 60000 AND 60500";
    // Filters too, but every block read.
    let whole = "SELECT count(*) FROM events WHERE kind <> 'none'";
    let reads = |sql: &'static str| {
        let c = &c;
        let server = &server;
        async move {
            let before = bytes_read(server);
            let first = scalar(c, sql).await;
            (first, bytes_read(server) - before)
        }
    };
    let (n, first) = reads(range).await;
    assert_eq!(n, "501");
    let (n, again) = reads(range).await;
    assert_eq!(n, "501");
    assert!(first > 0.0, "the first range reads its pages");
    assert_eq!(
        again, 0.0,
        "the same range again reads nothing (first {first})"
    );

    let (n, _) = reads(whole).await;
    assert_eq!(n, "150000");
    let (_, again) = reads(whole).await;
    assert!(
        again > 0.0,
        "a scan of every block reads from storage each time"
    );
}

/// A kept lookup reads the pages the page index narrows it to once: the
/// same lookups again read nothing from storage (the page cache), and still
/// see what a later commit writes.
#[tokio::test]
async fn kept_lookups_read_their_pages_once() {
    let (server, c) = events_with_metrics(100000).await;
    let lookup = c
        .prepare("SELECT kind FROM events WHERE id = $1")
        .await
        .unwrap();
    let ids: Vec<i64> = (1..=10).map(|i| i * 1999).collect();
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let before = bytes_read(&server);
        for id in &ids {
            let got = c.query(&lookup, &[id]).await.unwrap();
            assert_eq!(got[0].get::<_, String>(0), format!("k{id}"));
        }
        rounds.push(bytes_read(&server) - before);
    }
    // The first round plans each lookup with its value (a selective scan,
    // whose pages are kept too); the kept plan's rounds find them cached.
    assert!(
        rounds[0] > 0.0,
        "the first round reads its pages: {rounds:?}"
    );
    assert_eq!(
        &rounds[1..],
        &[0.0, 0.0],
        "the same lookups again read nothing: {rounds:?}"
    );

    c.batch_execute("INSERT INTO events VALUES (3998, 'late')")
        .await
        .unwrap();
    let got: Vec<String> = c
        .query(&lookup, &[&3998i64])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&"late".to_string()));
}
