//! String functions whose result size a query chooses (`repeat('x', n)`,
//! `lpad(s, n)`, `rpad(s, n)`): DataFusion would try to allocate whatever is
//! asked, and a failed allocation aborts the whole server. PostgreSQL caps a
//! value at 1 GB and fails the statement with 54000; so does fusegate, by
//! checking the arguments before DataFusion's own function runs.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::error::{Error, ErrorKind};

/// PostgreSQL's largest value: 1 GB.
const MAX_VALUE_BYTES: i64 = (1 << 30) - 1;

/// How a function's result size follows from its arguments.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Size {
    /// repeat(s, n): n copies of s.
    Copies,
    /// lpad/rpad(s, n[, fill]): n characters (up to 4 bytes each).
    Characters,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Capped {
    inner: Arc<ScalarUDF>,
    size: Size,
}

/// Replaces `repeat`, `lpad` and `rpad` in `ctx` with capped versions.
pub fn install(ctx: &SessionContext) {
    for (name, size) in [
        ("repeat", Size::Copies),
        ("lpad", Size::Characters),
        ("rpad", Size::Characters),
    ] {
        if let Some(inner) = ctx.state().scalar_functions().get(name).cloned() {
            ctx.register_udf(ScalarUDF::new_from_impl(Capped { inner, size }));
        }
    }
}

fn too_large() -> DataFusionError {
    DataFusionError::External(Box::new(Error::new(
        ErrorKind::ProgramLimitExceeded,
        "requested length too large",
    )))
}

/// The largest value of an integer argument (NULLs ignored).
fn max_int(value: &ColumnarValue) -> Option<i64> {
    match value {
        ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(v) => v,
            _ => None,
        },
        ColumnarValue::Array(a) => {
            let a = arrow::compute::cast(a, &DataType::Int64).ok()?;
            arrow::compute::max(a.as_primitive::<Int64Type>())
        }
    }
}

/// The longest string argument, in bytes.
fn max_len(value: &ColumnarValue) -> i64 {
    match value {
        ColumnarValue::Scalar(s) => s.to_string().len() as i64,
        ColumnarValue::Array(a) => match arrow::compute::cast(a, &DataType::Utf8) {
            Ok(a) => {
                let a = a.as_string::<i32>();
                (0..a.len())
                    .filter(|i| a.is_valid(*i))
                    .map(|i| a.value(i).len() as i64)
                    .max()
                    .unwrap_or(0)
            }
            Err(_) => 0,
        },
    }
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        if let (Some(text), Some(n)) = (args.args.first(), args.args.get(1))
            && let Some(n) = max_int(n)
        {
            let bytes = match self.size {
                Size::Copies => n.saturating_mul(max_len(text)),
                Size::Characters => n.saturating_mul(4),
            };
            // Row counts multiply it for a whole batch; per value is PostgreSQL's limit.
            if bytes > MAX_VALUE_BYTES {
                return Err(too_large());
            }
        }
        self.inner.invoke_with_args(args)
    }
}
