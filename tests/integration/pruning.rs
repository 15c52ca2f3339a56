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
