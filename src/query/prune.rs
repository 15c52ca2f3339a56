//! Block pruning: the segment's per-block min/max/null counts, presented to
//! DataFusion's `PruningPredicate`, which decides which blocks a filter can
//! skip. Using DataFusion's predicate rewriting (rather than our own) means
//! every filter DataFusion can reason about prunes, casts and all.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;

use crate::error::Result;
use crate::fuse::meta::{BlockMeta, StatValue};
use crate::fuse::schema::TableSchema;

use super::error::from_datafusion;

/// Which of `blocks` may hold rows matching `predicate` (true: must be read).
pub fn prune_blocks(
    predicate: &Arc<dyn PhysicalExpr>,
    arrow_schema: &SchemaRef,
    schema: &TableSchema,
    blocks: &[&BlockMeta],
) -> Result<Vec<bool>> {
    // A predicate the statistics cannot decide keeps every block.
    let Some(pruning) = PruningPredicateBuilder::new()
        .with_file_schema(arrow_schema.clone())
        .build(predicate.clone())
    else {
        return Ok(vec![true; blocks.len()]);
    };
    let stats = BlockStats {
        blocks,
        schema,
        arrow_schema,
    };
    pruning.prune(&stats).map_err(from_datafusion)
}

struct BlockStats<'a> {
    blocks: &'a [&'a BlockMeta],
    schema: &'a TableSchema,
    arrow_schema: &'a SchemaRef,
}

impl BlockStats<'_> {
    fn bound_array(
        &self,
        column: &Column,
        pick: fn(&crate::fuse::meta::ColumnStats) -> Option<&StatValue>,
    ) -> Option<ArrayRef> {
        let meta = self.schema.column(&column.name)?;
        let field = self.arrow_schema.field_with_name(&column.name).ok()?;
        let data_type = field.data_type();
        let unknown = || ScalarValue::try_from(data_type).unwrap_or(ScalarValue::Null);
        // A block with no statistics for the column predates it (the writer
        // records every column): all its rows hold the column's missing value.
        let missing = meta
            .missing
            .clone()
            .and_then(|text| ScalarValue::try_from_string(text, data_type).ok());
        let values: Vec<ScalarValue> = self
            .blocks
            .iter()
            .map(|b| match b.col_stats.get(&meta.id) {
                Some(stats) => pick(stats)
                    .and_then(|v| to_scalar(v, data_type))
                    .unwrap_or_else(unknown),
                None => missing.clone().unwrap_or_else(unknown),
            })
            .collect();
        ScalarValue::iter_to_array(values).ok()
    }
}

/// A stored bound as a value of the column's Arrow type.
fn to_scalar(v: &StatValue, data_type: &DataType) -> Option<ScalarValue> {
    Some(match (v, data_type) {
        (StatValue::Int(i), DataType::Int16) => ScalarValue::Int16(Some(i16::try_from(*i).ok()?)),
        (StatValue::Int(i), DataType::Int32) => ScalarValue::Int32(Some(i32::try_from(*i).ok()?)),
        (StatValue::Int(i), DataType::Int64) => ScalarValue::Int64(Some(*i)),
        (StatValue::Int(i), DataType::Date32) => ScalarValue::Date32(Some(i32::try_from(*i).ok()?)),
        (StatValue::Int(i), DataType::Timestamp(_, tz)) => {
            ScalarValue::TimestampMicrosecond(Some(*i), tz.clone())
        }
        (StatValue::Float(f), DataType::Float32) => ScalarValue::Float32(Some(*f as f32)),
        (StatValue::Float(f), DataType::Float64) => ScalarValue::Float64(Some(*f)),
        (StatValue::Decimal(d), DataType::Decimal128(p, s)) => {
            ScalarValue::Decimal128(Some(d.parse().ok()?), *p, *s)
        }
        (StatValue::Str(s), DataType::Utf8) => ScalarValue::Utf8(Some(s.clone())),
        (StatValue::Str(s), DataType::Utf8View) => ScalarValue::Utf8View(Some(s.clone())),
        (StatValue::Bool(b), DataType::Boolean) => ScalarValue::Boolean(Some(*b)),
        _ => return None,
    })
}

impl PruningStatistics for BlockStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound_array(column, |s| s.min.as_ref())
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound_array(column, |s| s.max.as_ref())
    }

    fn num_containers(&self) -> usize {
        self.blocks.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let meta = self.schema.column(&column.name)?;
        let counts: UInt64Array = self
            .blocks
            .iter()
            .map(|b| match b.col_stats.get(&meta.id) {
                Some(stats) => Some(stats.null_count),
                // The block predates the column: all NULL, or all its default.
                None if meta.missing.is_some() => Some(0),
                None => Some(b.row_count),
            })
            .collect();
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: UInt64Array = self.blocks.iter().map(|b| Some(b.row_count)).collect();
        Some(Arc::new(counts))
    }

    #[allow(clippy::mutable_key_type)]
    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}
