//! `CALL system$fuse_check('db', 't')`: an integrity check that changes
//! nothing. It walks what the table's current snapshot references (the
//! snapshot, its segments, their blocks, the snapshot hint) against one
//! listing of the table's directory, and reports every object that is
//! missing or whose size differs from the metadata, with whether a versioned
//! restore (`fuse_amend`) could bring it back. No rows: the table is whole.

use std::collections::HashMap;
use std::sync::Arc;

use super::amend::{Plan, read_fresh};
use crate::error::Result;
use crate::fuse::FuseEngine;
use crate::fuse::meta::{Segment, Snapshot, paths};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The object's path under the table's root.
    pub object: String,
    /// snapshot, segment, block or hint.
    pub kind: &'static str,
    pub problem: String,
    /// Whether `fuse_amend` could restore it (a version of it is kept).
    pub restorable: bool,
}

/// What `fuse_check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Objects the current snapshot needs.
    pub checked: u64,
    pub findings: Vec<Finding>,
}

pub async fn fuse_check(engine: &Arc<FuseEngine>, db: &str, name: &str) -> Result<CheckReport> {
    let state = engine.catalog().current().await?;
    let meta = state.require_table(db, name)?;
    let table = engine.table(db, meta)?;
    let storage = table.storage();
    let mut report = CheckReport::default();
    let Some(snapshot_location) = meta.snapshot_location.clone() else {
        return Ok(report);
    };
    let live: HashMap<String, u64> = storage
        .list("")
        .await?
        .into_iter()
        .map(|e| (e.path, e.size))
        .collect();
    let plan = if storage.capabilities().list_versions {
        Some(Plan::new(storage.list_versions("").await?))
    } else {
        None
    };
    let restorable = |path: &str| {
        plan.as_ref()
            .is_some_and(|p| matches!(p.restore_of(path), Ok(Some(_))))
    };
    let missing = |report: &mut CheckReport, path: &str, kind: &'static str| {
        report.findings.push(Finding {
            object: path.to_string(),
            kind,
            problem: "missing".into(),
            restorable: restorable(path),
        });
    };

    report.checked += 1;
    if !live.contains_key(&snapshot_location) {
        missing(&mut report, &snapshot_location, "snapshot");
        // Its segments and blocks are known only from it.
        return Ok(report);
    }
    let snapshot: Snapshot = read_fresh(&table, &snapshot_location).await?;
    report.checked += 1;
    if !live.contains_key(paths::LAST_SNAPSHOT_HINT) {
        report.findings.push(Finding {
            object: paths::LAST_SNAPSHOT_HINT.into(),
            kind: "hint",
            problem: "missing (fuse_amend rewrites it)".into(),
            restorable: true,
        });
    }
    for segment_ref in &snapshot.segments {
        report.checked += 1;
        if !live.contains_key(&segment_ref.location) {
            missing(&mut report, &segment_ref.location, "segment");
            continue;
        }
        let segment: Segment = read_fresh(&table, &segment_ref.location).await?;
        for block in segment.blocks {
            report.checked += 1;
            match live.get(&block.location) {
                None => missing(&mut report, &block.location, "block"),
                // A live object of the wrong size: fuse_amend brings back
                // deleted objects only.
                Some(&size) if size != block.file_size => report.findings.push(Finding {
                    problem: format!("{size} bytes, the metadata says {}", block.file_size),
                    restorable: false,
                    object: block.location,
                    kind: "block",
                }),
                Some(_) => {}
            }
        }
    }
    tracing::info!(
        table = %format!("{db}.{name}"),
        checked = report.checked,
        problems = report.findings.len(),
        "fuse_check finished"
    );
    Ok(report)
}
