//! Per-block column statistics (min, max, null count), computed while blocks
//! are written and used to prune blocks at scan time.

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::compute;

use super::meta::{ColumnStats, StatValue};
use super::schema::ColumnType;

/// Longest string kept as a min/max bound; longer minimums are truncated (still
/// a lower bound), longer maximums dropped.
const MAX_STRING_STAT: usize = 64;

/// Accumulates the statistics of one column across the batches of a block.
#[derive(Debug, Clone)]
pub struct StatsBuilder {
    ty: ColumnType,
    min: Option<StatValue>,
    max: Option<StatValue>,
    null_count: u64,
    /// Set when a value made the bounds unusable (NaN, an overlong string max).
    poisoned: bool,
}

impl StatsBuilder {
    pub fn new(ty: ColumnType) -> Self {
        StatsBuilder {
            ty,
            min: None,
            max: None,
            null_count: 0,
            poisoned: false,
        }
    }

    pub fn update(&mut self, array: &ArrayRef) {
        self.null_count += array.null_count() as u64;
        if array.null_count() == array.len() {
            return;
        }
        let (min, max) = match array_bounds(&self.ty, array) {
            Some(bounds) => bounds,
            None => {
                self.poisoned = true;
                return;
            }
        };
        self.min = Some(match self.min.take() {
            Some(cur) if less(&cur, &min) => cur,
            _ => min,
        });
        self.max = Some(match self.max.take() {
            Some(cur) if less(&max, &cur) => cur,
            _ => max,
        });
    }

    pub fn finish(self) -> ColumnStats {
        if self.poisoned {
            return ColumnStats {
                min: None,
                max: None,
                null_count: self.null_count,
            };
        }
        let min = self.min.map(|m| match m {
            StatValue::Str(s) if s.chars().count() > MAX_STRING_STAT => {
                StatValue::Str(s.chars().take(MAX_STRING_STAT).collect())
            }
            other => other,
        });
        let max = self.max.filter(|m| match m {
            StatValue::Str(s) => s.chars().count() <= MAX_STRING_STAT,
            _ => true,
        });
        ColumnStats {
            min,
            max,
            null_count: self.null_count,
        }
    }
}

fn less(a: &StatValue, b: &StatValue) -> bool {
    match (a, b) {
        (StatValue::Int(a), StatValue::Int(b)) => a < b,
        (StatValue::Float(a), StatValue::Float(b)) => a < b,
        (StatValue::Bool(a), StatValue::Bool(b)) => a < b,
        (StatValue::Str(a), StatValue::Str(b)) => a < b,
        (StatValue::Decimal(a), StatValue::Decimal(b)) => {
            a.parse::<i128>().unwrap_or(0) < b.parse::<i128>().unwrap_or(0)
        }
        _ => false,
    }
}

/// Min and max of the non-null values, or None when they cannot serve as bounds.
fn array_bounds(ty: &ColumnType, array: &ArrayRef) -> Option<(StatValue, StatValue)> {
    let any = array.as_any();
    match ty {
        ColumnType::Int16 => {
            let a = any.downcast_ref::<Int16Array>()?;
            Some((
                StatValue::Int(compute::min(a)? as i64),
                StatValue::Int(compute::max(a)? as i64),
            ))
        }
        ColumnType::Int32 => {
            let a = any.downcast_ref::<Int32Array>()?;
            Some((
                StatValue::Int(compute::min(a)? as i64),
                StatValue::Int(compute::max(a)? as i64),
            ))
        }
        ColumnType::Int64 => {
            let a = any.downcast_ref::<Int64Array>()?;
            Some((
                StatValue::Int(compute::min(a)?),
                StatValue::Int(compute::max(a)?),
            ))
        }
        ColumnType::Date => {
            let a = any.downcast_ref::<Date32Array>()?;
            Some((
                StatValue::Int(compute::min(a)? as i64),
                StatValue::Int(compute::max(a)? as i64),
            ))
        }
        ColumnType::Timestamp | ColumnType::TimestampTz => {
            let a = any.downcast_ref::<TimestampMicrosecondArray>()?;
            Some((
                StatValue::Int(compute::min(a)?),
                StatValue::Int(compute::max(a)?),
            ))
        }
        ColumnType::Float32 => {
            let a = any.downcast_ref::<Float32Array>()?;
            float_bounds(a.iter().flatten().map(f64::from))
        }
        ColumnType::Float64 => {
            let a = any.downcast_ref::<Float64Array>()?;
            float_bounds(a.iter().flatten())
        }
        ColumnType::Decimal { .. } => {
            let a = any.downcast_ref::<Decimal128Array>()?;
            Some((
                StatValue::Decimal(compute::min(a)?.to_string()),
                StatValue::Decimal(compute::max(a)?.to_string()),
            ))
        }
        ColumnType::Varchar { .. } | ColumnType::Text => {
            let a: &StringArray = array.as_string_opt::<i32>()?;
            Some((
                StatValue::Str(compute::min_string(a)?.to_string()),
                StatValue::Str(compute::max_string(a)?.to_string()),
            ))
        }
        ColumnType::Boolean => {
            let a = any.downcast_ref::<BooleanArray>()?;
            Some((
                StatValue::Bool(compute::min_boolean(a)?),
                StatValue::Bool(compute::max_boolean(a)?),
            ))
        }
    }
}

/// NaN sorts above every number in SQL, and JSON cannot hold it or infinities:
/// such blocks keep no float bounds.
fn float_bounds(values: impl Iterator<Item = f64>) -> Option<(StatValue, StatValue)> {
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    for v in values {
        if !v.is_finite() {
            return None;
        }
        min = min.min(v);
        max = max.max(v);
    }
    if min > max {
        return None;
    }
    Some((StatValue::Float(min), StatValue::Float(max)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn accumulates_across_batches() {
        let mut b = StatsBuilder::new(ColumnType::Int32);
        b.update(&(Arc::new(Int32Array::from(vec![Some(5), None, Some(9)])) as ArrayRef));
        b.update(&(Arc::new(Int32Array::from(vec![Some(-2), Some(7)])) as ArrayRef));
        b.update(&(Arc::new(Int32Array::from(vec![None::<i32>])) as ArrayRef));
        let s = b.finish();
        assert_eq!(s.min, Some(StatValue::Int(-2)));
        assert_eq!(s.max, Some(StatValue::Int(9)));
        assert_eq!(s.null_count, 2);
    }

    #[test]
    fn nan_drops_float_bounds() {
        let mut b = StatsBuilder::new(ColumnType::Float64);
        b.update(&(Arc::new(Float64Array::from(vec![1.0, f64::NAN])) as ArrayRef));
        let s = b.finish();
        assert_eq!((s.min, s.max), (None, None));
    }

    #[test]
    fn long_strings_truncate_min_and_drop_max() {
        let long = "x".repeat(100);
        let mut b = StatsBuilder::new(ColumnType::Text);
        b.update(&(Arc::new(StringArray::from(vec![long.as_str(), "y"])) as ArrayRef));
        let s = b.finish();
        assert_eq!(s.min, Some(StatValue::Str("x".repeat(64))));
        assert_eq!(s.max, Some(StatValue::Str("y".into())));
        let mut b = StatsBuilder::new(ColumnType::Text);
        b.update(&(Arc::new(StringArray::from(vec!["a", long.as_str()])) as ArrayRef));
        assert_eq!(b.finish().max, None);
    }

    #[test]
    fn decimals_compare_numerically() {
        let mut b = StatsBuilder::new(ColumnType::Decimal {
            precision: 10,
            scale: 2,
        });
        let arr = Decimal128Array::from(vec![900, 10000])
            .with_precision_and_scale(10, 2)
            .unwrap();
        b.update(&(Arc::new(arr) as ArrayRef));
        let arr = Decimal128Array::from(vec![-5])
            .with_precision_and_scale(10, 2)
            .unwrap();
        b.update(&(Arc::new(arr) as ArrayRef));
        let s = b.finish();
        assert_eq!(s.min, Some(StatValue::Decimal("-5".into())));
        assert_eq!(s.max, Some(StatValue::Decimal("10000".into())));
    }
}
