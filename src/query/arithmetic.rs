//! Integer arithmetic as PostgreSQL does it: a sum, difference or product
//! that leaves its type is an error (22003, `integer out of range`), not a
//! wrapped value. DataFusion's `+`, `-` and `*` wrap around, which answers a
//! query with a wrong number.
//!
//! `CheckedIntegerArithmetic`, an analyzer rule run after type coercion (so
//! both sides have one type), replaces those operators on `smallint`,
//! `integer` and `bigint` with functions over Arrow's checked kernels.

use arrow::array::{Datum, Scalar};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

use super::rewrite::rewrite_expressions;
use crate::error::{Error, ErrorKind};

#[derive(Debug, Default)]
pub struct CheckedIntegerArithmetic;

impl AnalyzerRule for CheckedIntegerArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_expressions(plan, |expr, schema| {
            let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
                return Ok(Transformed::no(expr));
            };
            let Some(kind) = Kind::of(*op) else {
                return Ok(Transformed::no(expr));
            };
            let (Ok(l), Ok(r)) = (left.get_type(schema), right.get_type(schema)) else {
                return Ok(Transformed::no(expr));
            };
            if l != r || type_name(&l).is_none() {
                return Ok(Transformed::no(expr));
            }
            let udf = ScalarUDF::new_from_impl(Checked {
                kind,
                signature: Signature::any(2, Volatility::Immutable),
            });
            Ok(Transformed::yes(
                udf.call(vec![(**left).clone(), (**right).clone()]),
            ))
        })
    }

    fn name(&self) -> &str {
        "fusegate_checked_integer_arithmetic"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Add,
    Sub,
    Mul,
}

impl Kind {
    fn of(op: Operator) -> Option<Kind> {
        match op {
            Operator::Plus => Some(Kind::Add),
            Operator::Minus => Some(Kind::Sub),
            Operator::Multiply => Some(Kind::Mul),
            _ => None,
        }
    }
}

/// PostgreSQL's name of an integer type, as its overflow message says it.
fn type_name(t: &DataType) -> Option<&'static str> {
    match t {
        DataType::Int16 => Some("smallint"),
        DataType::Int32 => Some("integer"),
        DataType::Int64 => Some("bigint"),
        _ => None,
    }
}

/// `int_add(a, b)`, `int_sub`, `int_mul`: checked integer arithmetic.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Add => "int_add",
            Kind::Sub => "int_sub",
            Kind::Mul => "int_mul",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        arg_types
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(format!("{} takes two arguments", self.name())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [left, right] = <[ColumnarValue; 2]>::try_from(args.args)
            .map_err(|_| DataFusionError::Plan(format!("{} takes two arguments", self.name())))?;
        let scalars = matches!(
            (&left, &right),
            (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
        );
        let data_type = left.data_type();
        let (l, r) = (datum(left)?, datum(right)?);
        let kernel = match self.kind {
            Kind::Add => arrow::compute::kernels::numeric::add,
            Kind::Sub => arrow::compute::kernels::numeric::sub,
            Kind::Mul => arrow::compute::kernels::numeric::mul,
        };
        let out = kernel(l.as_ref(), r.as_ref()).map_err(|e| match e {
            ArrowError::ArithmeticOverflow(_) => DataFusionError::External(Box::new(Error::new(
                ErrorKind::NumericValueOutOfRange,
                format!(
                    "{} out of range",
                    type_name(&data_type).unwrap_or("integer")
                ),
            ))),
            other => other.into(),
        })?;
        Ok(if scalars {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// An argument as an Arrow datum: an array, or a scalar the kernel
/// broadcasts.
fn datum(value: ColumnarValue) -> Result<Box<dyn Datum>> {
    Ok(match value {
        ColumnarValue::Array(array) => Box::new(array),
        ColumnarValue::Scalar(scalar) => Box::new(Scalar::new(scalar.to_array()?)),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow::array::{Array, ArrayRef, Int32Array};
    use datafusion::arrow::datatypes::Field;

    fn call(kind: Kind, l: ColumnarValue, r: ColumnarValue) -> Result<ColumnarValue> {
        let udf = Checked {
            kind,
            signature: Signature::any(2, Volatility::Immutable),
        };
        let field = Arc::new(Field::new("x", l.data_type(), true));
        udf.invoke_with_args(ScalarFunctionArgs {
            args: vec![l, r],
            arg_fields: vec![field.clone(), field.clone()],
            number_rows: 2,
            return_field: field,
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    #[test]
    fn overflow_is_22003_and_the_rest_is_exact() {
        let column: ArrayRef = Arc::new(Int32Array::from(vec![Some(2_147_483_646), None]));
        let one = ColumnarValue::Scalar(ScalarValue::Int32(Some(1)));
        let two = ColumnarValue::Scalar(ScalarValue::Int32(Some(2)));
        let ColumnarValue::Array(sum) =
            call(Kind::Add, ColumnarValue::Array(column.clone()), one).unwrap()
        else {
            panic!("an array")
        };
        assert_eq!(
            sum.as_any().downcast_ref::<Int32Array>().unwrap(),
            &Int32Array::from(vec![Some(2_147_483_647), None])
        );
        let err = call(Kind::Add, ColumnarValue::Array(column), two.clone()).unwrap_err();
        let ours = Error::find_in(&err).expect("a fusegate error");
        assert_eq!(ours.sqlstate(), "22003");
        assert_eq!(ours.to_string(), "integer out of range");
        let min = ColumnarValue::Scalar(ScalarValue::Int64(Some(i64::MIN)));
        let err = call(
            Kind::Sub,
            min,
            ColumnarValue::Scalar(ScalarValue::Int64(Some(1))),
        )
        .unwrap_err();
        assert_eq!(
            Error::find_in(&err).map(|e| e.to_string()).as_deref(),
            Some("bigint out of range")
        );
        let small = ColumnarValue::Scalar(ScalarValue::Int16(Some(200)));
        assert!(call(Kind::Mul, small.clone(), small).is_err());
    }
}
