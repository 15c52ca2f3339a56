//! Explicit transactions (BEGIN ... COMMIT).
//!
//! Inside a transaction a write does not move the table's pointer in the
//! catalog: it writes its new snapshot object and records it as the table's
//! *working snapshot*, which later statements of the same session read and
//! build on. COMMIT then moves the pointers of every table written, all in
//! one catalog version — so a multi-table transaction becomes visible at once
//! — rebasing over commits that only appended meanwhile, and failing with
//! 40001 over anything else. ROLLBACK just forgets the working snapshots
//! (their objects are unreferenced; VACUUM removes them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::Utc;

use super::FuseEngine;
use super::meta::{Snapshot, paths};
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone)]
struct Written {
    db_name: String,
    /// The table's snapshot when the transaction first wrote it.
    base: Option<String>,
    /// The snapshot this transaction's writes produced.
    working: String,
}

/// A transaction's writes at a savepoint.
#[derive(Debug, Clone)]
pub struct TxnMark(BTreeMap<u64, Written>);

/// The tables one transaction has written, by table id.
#[derive(Debug, Default)]
pub struct Transaction {
    written: Mutex<BTreeMap<u64, Written>>,
}

impl Transaction {
    pub fn new() -> Arc<Transaction> {
        Arc::new(Transaction::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Written>> {
        match self.written.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The working snapshot of a table this transaction wrote.
    pub fn working_snapshot(&self, table_id: u64) -> Option<String> {
        self.lock().get(&table_id).map(|w| w.working.clone())
    }

    pub(super) fn record(
        &self,
        table_id: u64,
        db_name: &str,
        base: Option<String>,
        working: String,
    ) {
        let mut written = self.lock();
        written
            .entry(table_id)
            .and_modify(|w| w.working = working.clone())
            .or_insert(Written {
                db_name: db_name.to_string(),
                base,
                working,
            });
    }

    /// Every working snapshot, by table id: what a statement of this
    /// transaction reads in place of the catalog's.
    pub fn working_snapshots(&self) -> Vec<(u64, String)> {
        self.lock()
            .iter()
            .map(|(id, w)| (*id, w.working.clone()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The writes so far, for a SAVEPOINT to return to.
    pub fn mark(&self) -> TxnMark {
        TxnMark(self.lock().clone())
    }

    /// ROLLBACK TO SAVEPOINT: forgets the writes made since `mark` (snapshots
    /// are immutable, so the tables' working snapshots simply go back).
    pub fn restore(&self, mark: &TxnMark) {
        *self.lock() = mark.0.clone();
    }

    /// Makes every write of the transaction visible in one catalog version.
    pub async fn commit(&self, engine: &Arc<FuseEngine>) -> Result<()> {
        let written: Vec<(u64, Written)> =
            self.lock().iter().map(|(k, v)| (*k, v.clone())).collect();
        if written.is_empty() {
            return Ok(());
        }
        let catalog = engine.catalog();
        let _guard = catalog.lock().await;
        for _ in 0..1000 {
            let state = catalog.current().await?;
            let mut next = (*state).clone();
            let mut created = Vec::new();
            let mut committed = Vec::new();
            for (id, w) in &written {
                let Some(current) = state.table_by_id(*id).filter(|t| !t.is_dropped()).cloned()
                else {
                    return Err(Error::new(
                        ErrorKind::UndefinedTable,
                        format!(
                            "a table written by the transaction was dropped before COMMIT (in database {})",
                            w.db_name
                        ),
                    ));
                };
                let table = engine.table(&w.db_name, &current)?;
                let target = if current.snapshot_location == w.base {
                    w.working.clone()
                } else {
                    // Others committed since. A transaction that only appended to
                    // the table applies on top of whatever is there now, as an
                    // INSERT does; one that rewrote it needs everything committed
                    // since to be appends (its base a suffix of now), kept in front.
                    let now = match &current.snapshot_location {
                        Some(loc) => table.read_snapshot(loc).await?,
                        None => return Err(conflict(&w.db_name, &current.name)),
                    };
                    let base_segments = match &w.base {
                        Some(loc) => table.read_snapshot(loc).await?.segments.clone(),
                        None => Vec::new(),
                    };
                    let n = base_segments.len();
                    let working = table.read_snapshot(&w.working).await?;
                    let w_len = working.segments.len();
                    let segments =
                        if w_len >= n && working.segments[w_len - n..] == base_segments[..] {
                            let mut segments = working.segments[..w_len - n].to_vec();
                            segments.extend(now.segments.iter().cloned());
                            segments
                        } else {
                            if now.segments.len() < n
                                || now.segments[now.segments.len() - n..] != base_segments[..]
                            {
                                return Err(conflict(&w.db_name, &current.name));
                            }
                            let mut segments = now.segments[..now.segments.len() - n].to_vec();
                            segments.extend(working.segments.iter().cloned());
                            segments
                        };
                    let loc = current.snapshot_location.clone().unwrap_or_default();
                    let rebased =
                        Snapshot::next(Some((&now, &loc)), current.schema.clone(), segments);
                    let location = paths::snapshot(&rebased.snapshot_id);
                    table
                        .storage()
                        .write(&location, Bytes::from(serde_json::to_vec(&rebased)?))
                        .await?;
                    created.push((table.clone(), location.clone()));
                    location
                };
                if let Some(t) = next.table_by_id_mut(*id) {
                    t.snapshot_location = Some(target.clone());
                    t.updated_on = Utc::now();
                }
                committed.push((table, target));
            }
            if catalog.try_commit(&state, next).await?.is_some() {
                self.lock().clear();
                for (table, location) in committed {
                    table.write_hint(&location).await;
                }
                return Ok(());
            }
            for (table, location) in created {
                let _ = table.storage().delete(&location).await;
            }
        }
        Err(Error::new(
            ErrorKind::SerializationFailure,
            "could not commit the transaction: too many concurrent writers",
        ))
    }
}

fn conflict(db: &str, table: &str) -> Error {
    Error::new(
        ErrorKind::SerializationFailure,
        format!("could not serialize access due to concurrent update of table {db}.{table}"),
    )
    .with_hint("Another transaction changed rows this one changed; run the transaction again.")
}
