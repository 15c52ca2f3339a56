//! `fusegate_only_row(x)`: the aggregate that makes a scalar subquery
//! plannable. DataFusion decorrelates a correlated scalar subquery only when
//! it aggregates; `sql::wrap_scalar_subqueries` routes the others' value
//! through this function, which returns the one row's value, NULL for no
//! row, and fails for a second row exactly as PostgreSQL does (21000).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

/// The aggregate's name, used by the SQL rewrite.
pub const ONLY_ROW_FUNCTION: &str = "fusegate_only_row";

pub fn only_row() -> AggregateUDF {
    AggregateUDF::new_from_impl(OnlyRow {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct OnlyRow {
    signature: Signature,
}

impl AggregateUDFImpl for OnlyRow {
    fn name(&self) -> &str {
        ONLY_ROW_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OnlyRowAccumulator {
            value: ScalarValue::try_from(args.return_field.data_type())?,
            rows: 0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("value", args.return_type().clone(), true)),
            Arc::new(Field::new("rows", DataType::Int64, false)),
        ])
    }
}

#[derive(Debug)]
struct OnlyRowAccumulator {
    value: ScalarValue,
    rows: i64,
}

impl OnlyRowAccumulator {
    fn add(&mut self, values: &ArrayRef, rows: impl Iterator<Item = (usize, i64)>) -> Result<()> {
        for (i, n) in rows {
            if n == 0 {
                continue;
            }
            self.rows += n;
            if self.rows > 1 {
                return Err(DataFusionError::Execution(
                    "more than one row returned by a subquery used as an expression".into(),
                ));
            }
            self.value = ScalarValue::try_from_array(values, i)?;
        }
        Ok(())
    }
}

impl Accumulator for OnlyRowAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], (0..values[0].len()).map(|i| (i, 1)))
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states[1].as_primitive::<Int64Type>();
        self.add(
            &states[0],
            rows.iter().enumerate().map(|(i, n)| (i, n.unwrap_or(0))),
        )
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            self.value.clone(),
            ScalarValue::Int64(Some(self.rows)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.value.size() - size_of_val(&self.value)
    }
}
