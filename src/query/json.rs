//! `json_build_object(key, value, ...)`, which SQLAlchemy's column
//! reflection calls. The result is PostgreSQL's `json` text, spaced as
//! PostgreSQL writes it: `{"a" : 1, "b" : "x"}`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub fn json_build_object() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonBuildObject {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !arg_types.len().is_multiple_of(2) {
            return Err(DataFusionError::Plan(
                "argument list must have even number of elements".into(),
            ));
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let options = FormatOptions::default();
        let formatters = arrays
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut out = StringBuilder::new();
        for row in 0..rows {
            let mut json = String::from("{");
            for (pair, chunk) in arrays.chunks(2).enumerate() {
                let (key, value) = (&chunk[0], &chunk[1]);
                if key.is_null(row) {
                    return Err(DataFusionError::Execution(format!(
                        "null value not allowed for object key (argument {})",
                        2 * pair + 1
                    )));
                }
                if pair > 0 {
                    json.push_str(", ");
                }
                let key = formatters[2 * pair].value(row).to_string();
                json.push_str(&serde_json::Value::String(key).to_string());
                json.push_str(" : ");
                json.push_str(&json_value(value, &formatters[2 * pair + 1], row));
            }
            json.push('}');
            out.append_value(json);
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(ColumnarValue::Array(array))
    }
}

/// A value as PostgreSQL's `to_json` writes it: numbers and booleans bare,
/// NULL as null, everything else as a JSON string of its text.
fn json_value(array: &ArrayRef, formatter: &ArrayFormatter, row: usize) -> String {
    if array.is_null(row) {
        return "null".into();
    }
    let text = formatter.value(row).to_string();
    match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        t if t.is_integer() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) => {
            text
        }
        // NaN and infinities are not JSON numbers: PostgreSQL quotes them.
        t if t.is_floating() && text.parse::<f64>().is_ok_and(f64::is_finite) => text,
        _ => serde_json::Value::String(text).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Int64Array, StringArray};
    use arrow::datatypes::Field;

    #[test]
    fn builds_objects_as_postgres_writes_them() {
        let args = vec![
            ColumnarValue::Array(Arc::new(StringArray::from(vec!["a", "a"]))),
            ColumnarValue::Array(Arc::new(Int64Array::from(vec![Some(1), None]))),
            ColumnarValue::Array(Arc::new(StringArray::from(vec!["b", "b"]))),
            ColumnarValue::Array(Arc::new(StringArray::from(vec!["x\"y", "z"]))),
            ColumnarValue::Array(Arc::new(StringArray::from(vec!["c", "c"]))),
            ColumnarValue::Array(Arc::new(BooleanArray::from(vec![true, false]))),
        ];
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("x", a.data_type(), true)))
            .collect();
        let out = json_build_object()
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields,
                number_rows: 2,
                return_field: Arc::new(Field::new("json", DataType::Utf8, true)),
                config_options: Default::default(),
            })
            .unwrap();
        let ColumnarValue::Array(out) = out else {
            panic!("an array")
        };
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), r#"{"a" : 1, "b" : "x\"y", "c" : true}"#);
        assert_eq!(out.value(1), r#"{"a" : null, "b" : "z", "c" : false}"#);
    }
}
