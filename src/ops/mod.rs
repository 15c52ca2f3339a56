//! Fuse operations that are not queries: databases and tables (DDL), each one
//! catalog commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

use crate::bail;
use crate::error::{Error, ErrorKind, Result};
use crate::fuse::meta::BlockMeta;
use crate::fuse::schema::TableSchema;
use crate::fuse::writer::{CODECS, codec};
use crate::fuse::{DEFAULT_DATABASE, DatabaseMeta, FuseEngine, FuseTable, TableMeta};
use crate::storage::{Storage, StorageLocation};

/// Table options fusegate understands, with what they take.
const TABLE_OPTIONS: &[&str] = &[
    "row_per_block",
    "row_per_page",
    "block_per_segment",
    "data_retention_period_in_hours",
    "compression",
];

pub async fn create_database(engine: &FuseEngine, name: &str, if_not_exists: bool) -> Result<()> {
    engine
        .catalog()
        .commit(|state| {
            if state.database(name).is_some() {
                if if_not_exists {
                    return Ok(());
                }
                bail!(DuplicateDatabase, "database \"{name}\" already exists");
            }
            let id = state.allocate_id();
            state.databases.push(DatabaseMeta {
                id,
                name: name.to_string(),
                created_on: Utc::now(),
            });
            Ok(())
        })
        .await
        .map(|_| ())
}

/// Drops a database and, recoverably (UNDROP), its tables.
pub async fn drop_database(engine: &FuseEngine, name: &str, if_exists: bool) -> Result<()> {
    if name == DEFAULT_DATABASE {
        bail!(ObjectInUse, "database \"{name}\" cannot be dropped");
    }
    engine
        .catalog()
        .commit(|state| {
            let Some(db) = state.database(name).cloned() else {
                if if_exists {
                    return Ok(());
                }
                bail!(UndefinedDatabase, "database \"{name}\" does not exist");
            };
            let now = Utc::now();
            for t in state
                .tables
                .iter_mut()
                .filter(|t| t.db_id == db.id && !t.is_dropped())
            {
                t.dropped_on = Some(now);
            }
            state.databases.retain(|d| d.id != db.id);
            Ok(())
        })
        .await
        .map(|_| ())
}

/// What CREATE TABLE asks for.
pub struct NewTable {
    pub database: String,
    pub name: String,
    pub schema: TableSchema,
    pub location: Option<StorageLocation>,
    pub options: BTreeMap<String, String>,
    pub if_not_exists: bool,
}

fn validate_options(options: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in options {
        if !TABLE_OPTIONS.contains(&key.as_str()) {
            bail!(
                InvalidParameterValue,
                "unknown table option \"{key}\" (known options: {})",
                TABLE_OPTIONS.join(", ")
            );
        }
        if key == "compression" {
            if codec(value).is_none() {
                bail!(
                    InvalidParameterValue,
                    "table option \"compression\" is one of {}, not \"{value}\"",
                    CODECS.join(", ")
                );
            }
            continue;
        }
        if value
            .parse::<u64>()
            .map(|v| v == 0 && key != "data_retention_period_in_hours")
            .unwrap_or(true)
        {
            bail!(
                InvalidParameterValue,
                "table option \"{key}\" needs a positive integer, not \"{value}\""
            );
        }
    }
    Ok(())
}

/// Creates an empty table. Returns false when it existed and IF NOT EXISTS was given.
pub async fn create_table(engine: &FuseEngine, new: NewTable) -> Result<bool> {
    validate_options(&new.options)?;
    if let Some(location) = &new.location {
        check_location(location).await?;
    }
    let (created, _) = engine
        .catalog()
        .commit(|state| {
            let db = state.require_database(&new.database)?.clone();
            if state.table(&new.database, &new.name).is_some() {
                if new.if_not_exists {
                    return Ok(false);
                }
                bail!(DuplicateTable, "relation \"{}\" already exists", new.name);
            }
            let id = state.allocate_id();
            state.tables.push(table_meta(&new, db.id, id, None));
            Ok(true)
        })
        .await?;
    Ok(created)
}

fn table_meta(new: &NewTable, db_id: u64, id: u64, snapshot_location: Option<String>) -> TableMeta {
    let now = Utc::now();
    TableMeta {
        id,
        db_id,
        name: new.name.clone(),
        schema: new.schema.clone(),
        location: new.location.clone(),
        options: new.options.clone(),
        snapshot_location,
        created_on: now,
        updated_on: now,
        dropped_on: None,
    }
}

/// CREATE TABLE ... AS: `fill` writes the rows into blocks of the (not yet
/// visible) table; the table then appears with its data in one commit, or not
/// at all. Returns the row count, or None when IF NOT EXISTS found the table.
pub async fn create_table_as<F, Fut>(
    engine: &Arc<FuseEngine>,
    new: NewTable,
    fill: F,
) -> Result<Option<u64>>
where
    F: FnOnce(FuseTable) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<BlockMeta>, u64)>>,
{
    validate_options(&new.options)?;
    if let Some(location) = &new.location {
        check_location(location).await?;
    }
    let state = engine.catalog().current().await?;
    let db = state.require_database(&new.database)?.clone();
    if state.table(&new.database, &new.name).is_some() {
        if new.if_not_exists {
            return Ok(None);
        }
        bail!(DuplicateTable, "relation \"{}\" already exists", new.name);
    }
    // Reserve an id, so the blocks have a home no other table will take.
    let (id, _) = engine.catalog().commit(|s| Ok(s.allocate_id())).await?;
    let draft = table_meta(&new, db.id, id, None);
    let table = engine.table(&new.database, &draft)?;
    let (blocks, rows) = fill(table.clone()).await?;
    let snapshot_location = table.write_initial_snapshot(blocks).await?;
    engine
        .catalog()
        .commit(|state| {
            let db = state.require_database(&new.database)?.clone();
            if state.table(&new.database, &new.name).is_some() {
                bail!(DuplicateTable, "relation \"{}\" already exists", new.name);
            }
            state
                .tables
                .push(table_meta(&new, db.id, id, snapshot_location.clone()));
            Ok(())
        })
        .await?;
    Ok(Some(rows))
}

/// Marks tables dropped; they stay recoverable until vacuumed.
pub async fn drop_table(
    engine: &FuseEngine,
    database: &str,
    name: &str,
    if_exists: bool,
) -> Result<()> {
    engine
        .catalog()
        .commit(|state| {
            state.require_database(database)?;
            let Some(id) = state.table(database, name).map(|t| t.id) else {
                if if_exists {
                    return Ok(());
                }
                bail!(UndefinedTable, "table \"{name}\" does not exist");
            };
            if let Some(t) = state.table_by_id_mut(id) {
                t.dropped_on = Some(Utc::now());
            }
            Ok(())
        })
        .await
        .map(|_| ())
}

/// Proves an external location works before any table points at it.
async fn check_location(location: &StorageLocation) -> Result<()> {
    let storage = Storage::open(location)?;
    storage.check_writable().await.map_err(|e| {
        Error::new(
            if e.kind() == ErrorKind::FeatureNotSupported {
                e.kind()
            } else {
                ErrorKind::StorageIo
            },
            format!("cannot use location {location}: {}", e.message()),
        )
        .with_hint("Check the bucket name, the endpoint_url and the credentials in CONNECTION.")
    })
}

/// A dropped table still recoverable with UNDROP.
#[derive(Debug, Clone)]
pub struct DroppedTable {
    pub database: String,
    pub name: String,
    pub created_on: chrono::DateTime<Utc>,
    pub dropped_on: chrono::DateTime<Utc>,
    pub meta: TableMeta,
}

/// Dropped tables (of one database, or all), most recently dropped first.
pub fn dropped_tables(engine: &FuseEngine, database: Option<&str>) -> Result<Vec<DroppedTable>> {
    let state = engine.catalog().cached();
    let db_filter = match database {
        Some(name) => Some(state.require_database(name)?.id),
        None => None,
    };
    let mut out: Vec<DroppedTable> = state
        .tables
        .iter()
        .filter(|t| t.is_dropped() && db_filter.is_none_or(|id| t.db_id == id))
        .filter_map(|t| {
            Some(DroppedTable {
                database: state
                    .databases
                    .iter()
                    .find(|d| d.id == t.db_id)
                    .map(|d| d.name.clone())
                    .unwrap_or_else(|| format!("<dropped database {}>", t.db_id)),
                name: t.name.clone(),
                created_on: t.created_on,
                dropped_on: t.dropped_on?,
                meta: t.clone(),
            })
        })
        .collect();
    out.sort_by_key(|d| std::cmp::Reverse(d.dropped_on));
    Ok(out)
}

/// UNDROP TABLE: brings back the most recently dropped table of that name.
pub async fn undrop_table(engine: &FuseEngine, database: &str, name: &str) -> Result<()> {
    engine
        .catalog()
        .commit(|state| {
            let db = state.require_database(database)?.id;
            if state.table(database, name).is_some() {
                bail!(
                    DuplicateTable,
                    "relation \"{name}\" already exists; rename or drop it before UNDROP"
                );
            }
            let Some(id) = state
                .tables
                .iter()
                .filter(|t| t.db_id == db && t.name == name && t.is_dropped())
                .max_by_key(|t| t.dropped_on)
                .map(|t| t.id)
            else {
                bail!(
                    UndefinedTable,
                    "no dropped table \"{name}\" in database \"{database}\" to undrop"
                );
            };
            if let Some(t) = state.table_by_id_mut(id) {
                t.dropped_on = None;
            }
            Ok(())
        })
        .await
        .map(|_| ())
}

/// VACUUM DROP TABLE: removes for good the tables dropped longer than
/// `retain` ago — their objects, then their catalog entries. Returns the
/// tables and how many objects each had.
pub async fn vacuum_dropped(
    engine: &FuseEngine,
    database: Option<&str>,
    retain: std::time::Duration,
    dry_run: bool,
) -> Result<Vec<(DroppedTable, usize)>> {
    let boundary = Utc::now() - chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX);
    let mut out = Vec::new();
    for dropped in dropped_tables(engine, database)? {
        if dropped.dropped_on > boundary {
            continue;
        }
        let storage = engine.table_storage(&dropped.meta)?;
        let objects = storage.list("").await?;
        if !dry_run {
            storage
                .delete_many(objects.iter().map(|o| o.path.clone()).collect())
                .await?;
            let id = dropped.meta.id;
            engine
                .catalog()
                .commit(|state| {
                    state.tables.retain(|t| t.id != id);
                    Ok(())
                })
                .await?;
        }
        out.push((dropped, objects.len()));
    }
    Ok(out)
}

/// One change of ALTER TABLE, with the new column's values already worked out.
#[derive(Debug, Clone)]
pub enum AlterChange {
    AddColumn {
        name: String,
        ty: crate::fuse::schema::ColumnType,
        nullable: bool,
        default: Option<String>,
        /// What rows written before the column existed read as (text).
        missing: Option<String>,
        if_not_exists: bool,
    },
    DropColumn {
        name: String,
        if_exists: bool,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    RenameTable {
        to: String,
    },
}

/// ALTER TABLE: changes the schema in the catalog only. Blocks are never
/// rewritten: they are read by column id with the new schema.
pub async fn alter_table(
    engine: &FuseEngine,
    database: &str,
    name: &str,
    if_exists: bool,
    changes: Vec<AlterChange>,
) -> Result<()> {
    engine
        .catalog()
        .commit(|state| {
            state.require_database(database)?;
            let Some(id) = state.table(database, name).map(|t| t.id) else {
                if if_exists {
                    return Ok(());
                }
                bail!(UndefinedTable, "relation \"{name}\" does not exist");
            };
            let mut meta = state
                .table_by_id(id)
                .cloned()
                .ok_or_else(|| Error::internal("table vanished"))?;
            for change in &changes {
                apply_change(state, database, &mut meta, change)?;
            }
            meta.updated_on = Utc::now();
            if let Some(t) = state.table_by_id_mut(id) {
                *t = meta;
            }
            Ok(())
        })
        .await
        .map(|_| ())
}

fn apply_change(
    state: &crate::fuse::CatalogState,
    database: &str,
    meta: &mut TableMeta,
    change: &AlterChange,
) -> Result<()> {
    let schema = &mut meta.schema;
    match change {
        AlterChange::AddColumn {
            name,
            ty,
            nullable,
            default,
            missing,
            if_not_exists,
        } => {
            if schema.column(name).is_some() {
                if *if_not_exists {
                    return Ok(());
                }
                bail!(
                    DuplicateColumn,
                    "column \"{name}\" of relation \"{}\" already exists",
                    meta.name
                );
            }
            let id = schema.next_column_id;
            schema.next_column_id += 1;
            schema.columns.push(crate::fuse::schema::ColumnMeta {
                id,
                name: name.clone(),
                ty: ty.clone(),
                nullable: *nullable,
                default: default.clone(),
                missing: missing.clone(),
            });
        }
        AlterChange::DropColumn { name, if_exists } => {
            if schema.column(name).is_none() {
                if *if_exists {
                    return Ok(());
                }
                bail!(
                    UndefinedColumn,
                    "column \"{name}\" of relation \"{}\" does not exist",
                    meta.name
                );
            }
            if schema.columns.len() == 1 {
                bail!(
                    FeatureNotSupported,
                    "cannot drop column \"{name}\": it is the only column of \"{}\"",
                    meta.name
                );
            }
            schema.columns.retain(|c| &c.name != name);
        }
        AlterChange::RenameColumn { from, to } => {
            if schema.column(to).is_some() {
                bail!(
                    DuplicateColumn,
                    "column \"{to}\" of relation \"{}\" already exists",
                    meta.name
                );
            }
            let Some(col) = schema.columns.iter_mut().find(|c| &c.name == from) else {
                bail!(UndefinedColumn, "column \"{from}\" does not exist");
            };
            col.name = to.clone();
        }
        AlterChange::RenameTable { to } => {
            if state.table(database, to).is_some() {
                bail!(DuplicateTable, "relation \"{to}\" already exists");
            }
            meta.name = to.clone();
        }
    }
    Ok(())
}
