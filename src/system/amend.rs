//! Fail-Safe: `CALL system$fuse_amend('db', 't')` brings back the objects of a
//! table's current snapshot that were deleted from a versioned bucket.
//!
//! 1. One versioned listing of the table's directory says, for every object,
//!    whether it is live, hidden by a delete marker, or has only older versions.
//! 2. The snapshot is restored first if missing (it must be read to find the
//!    rest), then the segments, then the blocks and the snapshot hint, each
//!    batch restored inside the storage service: delete markers removed in
//!    batches of 1,000, copies of old versions with bounded concurrency.
//! 3. Objects with no version to restore are reported, after everything that
//!    could be restored was.

use std::collections::HashMap;
use std::sync::Arc;

use crate::bail;
use crate::error::{Error, ErrorKind, Result};
use crate::fuse::meta::{self, Segment, Snapshot, paths};
use crate::fuse::{FuseEngine, FuseTable};
use crate::storage::{ObjectVersion, Restore, Scheme};

/// What `fuse_amend` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmendReport {
    /// Objects the current snapshot needs (snapshot, segments, blocks, hint).
    pub checked: u64,
    /// Objects that were missing and are back.
    pub restored: u64,
}

/// The state of one object according to the versioned listing.
#[derive(Debug, Default)]
struct ObjectState {
    live: bool,
    /// The latest entry is a delete marker.
    marked_deleted: bool,
    /// The newest version with content.
    newest_version: Option<String>,
    /// The version ids of the object's delete markers.
    delete_markers: Vec<String>,
    /// A delete marker came without a version id (it cannot be removed by id).
    unnamed_marker: bool,
}

pub(super) struct Plan {
    objects: HashMap<String, ObjectState>,
}

impl Plan {
    pub(super) fn new(versions: Vec<ObjectVersion>) -> Plan {
        let mut objects: HashMap<String, ObjectState> = HashMap::new();
        for v in versions {
            let state = objects.entry(v.path.clone()).or_default();
            if v.is_delete_marker {
                match &v.version {
                    Some(id) => state.delete_markers.push(id.clone()),
                    None => state.unnamed_marker = true,
                }
            }
            if v.is_latest {
                if v.is_delete_marker {
                    state.marked_deleted = true;
                } else {
                    state.live = true;
                }
            }
            // Listings put an object's newest version first.
            if !v.is_delete_marker && state.newest_version.is_none() {
                state.newest_version = v.version.clone();
            }
        }
        Plan { objects }
    }

    /// How to bring `path` back; `Ok(None)` when it is live.
    ///
    /// The listing already names what to remove or copy, so no restore needs
    /// a request of its own to look first. An object hidden by delete markers
    /// comes back by removing all of them (several when it was deleted more
    /// than once), batched with the others' (S3's undelete); one without
    /// markers over its versions (its current version itself was deleted) by
    /// a server-side copy of the newest version (`restore_with(..).version(v)`).
    pub(super) fn restore_of(&self, path: &str) -> std::result::Result<Option<Restore>, ()> {
        match self.objects.get(path) {
            Some(s) if s.live => Ok(None),
            // "null" is a version id too: the object as written before versioning was enabled.
            Some(ObjectState {
                marked_deleted: true,
                newest_version: Some(v),
                delete_markers: markers,
                unnamed_marker: false,
                ..
            }) => Ok(Some(Restore::Undelete {
                markers: markers.clone(),
                version: v.clone(),
            })),
            Some(ObjectState {
                newest_version: Some(v),
                ..
            }) => Ok(Some(Restore::FromVersion(v.clone()))),
            Some(s) if s.marked_deleted => Ok(Some(Restore::RemoveDeleteMarker)),
            _ => Err(()),
        }
    }
}

/// Collects the requests for `paths`, noting the ones that cannot be restored.
fn requests(plan: &Plan, paths: &[String], lost: &mut Vec<String>) -> Vec<(String, Restore)> {
    let mut out = Vec::new();
    for p in paths {
        match plan.restore_of(p) {
            Ok(None) => {}
            Ok(Some(how)) => out.push((p.clone(), how)),
            Err(()) => lost.push(p.clone()),
        }
    }
    out
}

pub async fn fuse_amend(engine: &Arc<FuseEngine>, db: &str, name: &str) -> Result<AmendReport> {
    let state = engine.catalog().current().await?;
    let meta = state.require_table(db, name)?;
    let table = engine.table(db, meta)?;
    let storage = table.storage().clone();
    let location = meta
        .location
        .clone()
        .unwrap_or_else(|| engine.data_location().clone());
    let caps = storage.capabilities();
    if !caps.restore || !caps.list_versions {
        let kind = if location.scheme == Scheme::Fs {
            "the local file system"
        } else {
            "a storage"
        };
        return Err(Error::new(
            ErrorKind::FeatureNotSupported,
            format!(
                "table {db}.{name} is stored on {kind} ({}), which keeps no object versions: Fail-Safe needs an S3-compatible bucket with versioning enabled",
                location.uri()
            ),
        ));
    }
    let Some(snapshot_location) = meta.snapshot_location.clone() else {
        // Never written: nothing to check.
        return Ok(AmendReport {
            checked: 0,
            restored: 0,
        });
    };

    let versions = storage.list_versions("").await?;
    let versioned = versions
        .iter()
        .any(|v| v.version.as_deref().is_some_and(|id| id != "null"));
    if !versioned {
        return Err(Error::new(
            ErrorKind::ObjectNotInPrerequisiteState,
            format!(
                "the bucket of table {db}.{name} ({}) keeps no object versions, so deleted objects cannot be restored: Fail-Safe needs an S3-compatible bucket with versioning enabled",
                location.uri()
            ),
        )
        .with_hint("Enable versioning on the bucket (for example `aws s3api put-bucket-versioning --versioning-configuration Status=Enabled`); objects deleted before that cannot be brought back."));
    }
    let plan = Plan::new(versions);
    let mut lost = Vec::new();
    let mut restored = 0u64;
    let mut checked = 0u64;

    // The snapshot first: everything else is found through it. Each step
    // needs the one before it whole, so a restore that fails ends the call,
    // saying which objects were not restored and what was not reached.
    checked += 1;
    let mut failed = Vec::new();
    restored += restore(
        &table,
        requests(&plan, std::slice::from_ref(&snapshot_location), &mut lost),
        &mut failed,
    )
    .await;
    if !failed.is_empty() {
        return Err(incomplete(
            &table,
            restored,
            failed,
            "its segments and blocks",
        ));
    }
    if !lost.is_empty() {
        return Err(unrestorable(&table, &location.uri(), &lost, restored));
    }
    let snapshot: Snapshot = read_fresh(&table, &snapshot_location).await?;

    // Then its segments, which list the blocks.
    let segment_paths: Vec<String> = snapshot
        .segments
        .iter()
        .map(|s| s.location.clone())
        .collect();
    checked += segment_paths.len() as u64;
    restored += restore(
        &table,
        requests(&plan, &segment_paths, &mut lost),
        &mut failed,
    )
    .await;
    if !failed.is_empty() {
        return Err(incomplete(&table, restored, failed, "the blocks"));
    }
    let mut blocks = Vec::new();
    for path in segment_paths.iter().filter(|p| !lost.contains(p)) {
        let segment: Segment = read_fresh(&table, path).await?;
        blocks.extend(segment.blocks.into_iter().map(|b| b.location));
    }

    // Then the blocks and the hint.
    checked += blocks.len() as u64;
    let mut rest = requests(&plan, &blocks, &mut lost);
    checked += 1;
    match plan.restore_of(paths::LAST_SNAPSHOT_HINT) {
        Ok(Some(how)) => rest.push((paths::LAST_SNAPSHOT_HINT.to_string(), how)),
        Ok(None) => {}
        // The hint is only a hint: the catalog knows the snapshot. Rewrite it.
        Err(()) => {
            storage
                .write(
                    paths::LAST_SNAPSHOT_HINT,
                    bytes::Bytes::from(snapshot_location.clone()),
                )
                .await?;
            restored += 1;
        }
    }
    restored += restore(&table, rest, &mut failed).await;
    table.evict_cache();
    crate::metrics::metrics().objects_restored(restored);
    if !failed.is_empty() {
        return Err(incomplete(&table, restored, failed, ""));
    }
    if !lost.is_empty() {
        return Err(unrestorable(&table, &location.uri(), &lost, restored));
    }
    tracing::info!(table = %format!("{db}.{name}"), checked, restored, "fuse_amend finished");
    Ok(AmendReport { checked, restored })
}

/// Runs a batch of restores, all of them even when some fail; returns how
/// many succeeded and adds the failures, with their paths, to `failed`.
async fn restore(
    table: &FuseTable,
    requests: Vec<(String, Restore)>,
    failed: &mut Vec<(String, Error)>,
) -> u64 {
    let paths: Vec<String> = requests.iter().map(|(p, _)| p.clone()).collect();
    let results = table.storage().restore_many(requests).await;
    let mut done = 0;
    for (path, result) in paths.into_iter().zip(results) {
        match result {
            Ok(()) => done += 1,
            Err(e) => failed.push((path, e)),
        }
    }
    done
}

/// The error of a call whose restores failed (storage errors, so running it
/// again may finish the job): how far it got and exactly what is missing.
fn incomplete(
    table: &FuseTable,
    restored: u64,
    failed: Vec<(String, Error)>,
    not_reached: &str,
) -> Error {
    let root = table.meta().root_dir();
    let listed: Vec<String> = failed
        .iter()
        .take(50)
        .map(|(p, _)| format!("{root}{p}"))
        .collect();
    let more = match failed.len() - listed.len() {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let reached = if not_reached.is_empty() {
        String::new()
    } else {
        format!("; it did not get to {not_reached}")
    };
    let Some((_, last)) = failed.last() else {
        return Error::internal("fuse_amend: no failed restore to report");
    };
    let mut error = Error::new(
        last.kind(),
        format!(
            "fuse_amend restored {restored} objects of table {}.{}, but {} restores failed: {}{more}{reached} (the last error: {})",
            table.db_name(),
            table.name(),
            failed.len(),
            listed.join(", "),
            last.message()
        ),
    )
    .with_hint("Nothing was lost: run fuse_amend again to restore what is still missing.");
    if last.is_temporary() {
        error = error.set_temporary();
    }
    error
}

/// Reads a metadata object directly (a cached copy would hide its absence).
pub(super) async fn read_fresh<T: serde::de::DeserializeOwned>(
    table: &FuseTable,
    path: &str,
) -> Result<T> {
    let bytes = table.storage().read(path).await?;
    meta::decode(&bytes, &format!("{}{path}", table.meta().root_dir()))
}

fn unrestorable(table: &FuseTable, uri: &str, lost: &[String], restored: u64) -> Error {
    let root = table.meta().root_dir();
    let listed: Vec<String> = lost.iter().take(50).map(|p| format!("{root}{p}")).collect();
    let more = if lost.len() > listed.len() {
        format!(" and {} more", lost.len() - listed.len())
    } else {
        String::new()
    };
    Error::new(
        ErrorKind::ObjectNotFound,
        format!(
            "fuse_amend restored {restored} objects of table {}.{}, but {} have no version left to restore in {uri}: {}{more}",
            table.db_name(),
            table.name(),
            lost.len(),
            listed.join(", ")
        ),
    )
    .with_hint("These objects were deleted permanently, or written before the bucket kept versions.")
}

/// Validates the (database, table) arguments of a procedure.
pub fn args<'a>(procedure: &str, args: &'a [String]) -> Result<(&'a str, &'a str)> {
    match args {
        [db, table] => Ok((db.as_str(), table.as_str())),
        _ => bail!(
            UndefinedFunction,
            "function {procedure} takes (database, table), got {} arguments",
            args.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(path: &str, id: &str, is_latest: bool, is_delete_marker: bool) -> ObjectVersion {
        ObjectVersion {
            path: path.to_string(),
            version: Some(id.to_string()),
            is_latest,
            is_delete_marker,
        }
    }

    #[test]
    fn the_listing_decides_how_each_object_comes_back() {
        let plan = Plan::new(vec![
            version("live", "l1", true, false),
            // Deleted once.
            version("once", "m1", true, true),
            version("once", "o1", false, false),
            // Deleted twice: both markers go.
            version("twice", "m3", true, true),
            version("twice", "m2", false, true),
            version("twice", "t1", false, false),
            // Its current version was deleted for good: no marker to remove.
            version("old", "v1", false, false),
            // Content the listing gave no version id: `Operator::restore`
            // finds the marker to remove itself.
            version("anonymous", "m4", true, true),
            ObjectVersion {
                version: None,
                ..version("anonymous", "", false, false)
            },
        ]);
        assert_eq!(plan.restore_of("live"), Ok(None));
        assert_eq!(
            plan.restore_of("once"),
            Ok(Some(Restore::Undelete {
                markers: vec!["m1".into()],
                version: "o1".into()
            }))
        );
        assert_eq!(
            plan.restore_of("twice"),
            Ok(Some(Restore::Undelete {
                markers: vec!["m3".into(), "m2".into()],
                version: "t1".into()
            }))
        );
        assert_eq!(
            plan.restore_of("old"),
            Ok(Some(Restore::FromVersion("v1".into())))
        );
        assert_eq!(
            plan.restore_of("anonymous"),
            Ok(Some(Restore::RemoveDeleteMarker))
        );
        assert_eq!(plan.restore_of("never"), Err(()));
    }

    #[test]
    fn a_marker_without_a_version_id_means_a_copy() {
        let mut marker = version("x", "", true, true);
        marker.version = None;
        let plan = Plan::new(vec![marker, version("x", "v1", false, false)]);
        assert_eq!(
            plan.restore_of("x"),
            Ok(Some(Restore::FromVersion("v1".into())))
        );
    }
}
