//! DataFusion errors → fusegate errors, with PostgreSQL's wording where a
//! client would see a difference. The SQLSTATE then follows from the kind.

use arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;

use crate::error::{Error, ErrorKind};

/// Converts a DataFusion error, looking through its chain for the real cause.
pub fn from_datafusion(err: DataFusionError) -> Error {
    // A fusegate error raised below DataFusion (storage, fuse) wins as is.
    if let Some(ours) = Error::find_in(&err) {
        return ours.duplicate();
    }
    classify(err.find_root())
}

fn classify(err: &DataFusionError) -> Error {
    match err {
        DataFusionError::SQL(e, _) => Error::new(ErrorKind::Syntax, format!("syntax error: {e}")),
        DataFusionError::SchemaError(e, _) => schema_error(e),
        DataFusionError::Plan(msg) => plan_error(msg),
        DataFusionError::NotImplemented(msg) => Error::new(
            ErrorKind::FeatureNotSupported,
            format!("not supported: {msg}"),
        ),
        DataFusionError::ResourcesExhausted(msg) => {
            Error::new(ErrorKind::OutOfMemory, format!("out of memory: {msg}"))
                .with_hint("Raise the server's --memory-limit or make the query need less memory.")
        }
        DataFusionError::ArrowError(e, _) => arrow_error(e),
        DataFusionError::Execution(msg) => execution_error(msg),
        DataFusionError::ParquetError(e) => Error::new(
            ErrorKind::DataCorrupted,
            format!("reading a block failed: {e}"),
        ),
        DataFusionError::Configuration(msg) => {
            Error::new(ErrorKind::InvalidParameterValue, msg.clone())
        }
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            classify(inner.find_root())
        }
        DataFusionError::Shared(inner) => classify(inner.find_root()),
        DataFusionError::Collection(errs) => match errs.first() {
            Some(first) => classify(first.find_root()),
            None => Error::internal("empty error collection"),
        },
        DataFusionError::Internal(msg) => match msg.find("No function matches") {
            Some(_) => plan_error(msg),
            None => Error::internal(other_text(err)),
        },
        other => Error::internal(other_text(other)),
    }
}

fn other_text(err: &DataFusionError) -> String {
    err.strip_backtrace()
}

fn schema_error(e: &SchemaError) -> Error {
    match e {
        SchemaError::FieldNotFound { field, .. } => {
            let name = match &field.relation {
                Some(rel) => format!("{}.{}", rel.table(), field.name),
                None => field.name.clone(),
            };
            Error::new(
                ErrorKind::UndefinedColumn,
                format!("column {} does not exist", quote(&name)),
            )
        }
        SchemaError::AmbiguousReference { field } => Error::new(
            ErrorKind::AmbiguousColumn,
            format!("column reference \"{}\" is ambiguous", field.name),
        ),
        SchemaError::DuplicateQualifiedField { name, .. }
        | SchemaError::DuplicateUnqualifiedField { name } => Error::new(
            ErrorKind::DuplicateColumn,
            format!("column \"{name}\" specified more than once"),
        ),
    }
}

/// `a.b` → `a.b` quoted as PostgreSQL does in "column t.x does not exist".
fn quote(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("\"{name}\"")
    }
}

/// The text between the first pair of single quotes.
fn first_quoted(msg: &str) -> Option<&str> {
    let start = msg.find('\'')? + 1;
    let len = msg[start..].find('\'')?;
    Some(&msg[start..start + len])
}

fn plan_error(msg: &str) -> Error {
    let lower = msg.to_ascii_lowercase();
    if lower.starts_with("table '") && lower.contains("not found") {
        let name = first_quoted(msg).unwrap_or(msg);
        // DataFusion names tables catalog.schema.table; PostgreSQL says schema.table.
        let parts: Vec<&str> = name.split('.').collect();
        let shown = if parts.len() == 3 {
            format!("{}.{}", parts[1], parts[2])
        } else {
            name.to_string()
        };
        return Error::new(
            ErrorKind::UndefinedTable,
            format!("relation \"{shown}\" does not exist"),
        );
    }
    if lower.contains("non-boolean predicate") {
        return Error::new(
            ErrorKind::DatatypeMismatch,
            "argument of WHERE must be type boolean",
        )
        .with_detail(msg.to_string());
    }
    if let Some(at) = msg.find("No function matches the given name and argument types '") {
        let rest = &msg[at + "No function matches the given name and argument types '".len()..];
        let call = rest.split('\'').next().unwrap_or(rest);
        return Error::new(ErrorKind::UndefinedFunction, format!("function {call} does not exist"))
            .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.");
    }
    if lower.starts_with("invalid function") || lower.contains("is not a function") {
        let name = first_quoted(msg).unwrap_or("?");
        return Error::new(
            ErrorKind::UndefinedFunction,
            format!("function {name} does not exist"),
        )
        .with_detail(msg.to_string());
    }
    if lower.contains("no function matches")
        || lower.contains("cannot coerce arithmetic")
        || lower.contains("no coercion")
        || lower.contains("cannot infer common")
        || lower.contains("failed to coerce")
        || lower.contains("does not support")
        || lower.contains("unsupported argument types")
    {
        return Error::new(ErrorKind::UndefinedFunction, format!("operator or function does not exist: {msg}"))
            .with_hint("No operator or function matches the given argument types. You might need to add explicit type casts.");
    }
    if lower.contains("schema '") && lower.contains("not found")
        || lower.contains("no schema named")
    {
        let name = first_quoted(msg).unwrap_or(msg);
        return Error::new(
            ErrorKind::UndefinedDatabase,
            format!("database \"{name}\" does not exist"),
        );
    }
    if lower.contains("must appear in the group by")
        || lower.contains("projection references non-aggregate")
    {
        return Error::new(ErrorKind::Grouping, msg.to_string());
    }
    if lower.contains("placeholder") && lower.contains("type") {
        return Error::new(ErrorKind::IndeterminateDatatype, msg.to_string());
    }
    if lower.contains("cannot cast") || lower.contains("can't cast") {
        return Error::new(ErrorKind::CannotCoerce, msg.to_string());
    }
    if lower.contains("inserting query must have the same schema")
        || lower.contains("column count")
        || lower.contains("insert has more")
    {
        return Error::new(ErrorKind::Syntax, msg.to_string());
    }
    if lower.contains("unsupported") || lower.contains("not supported") {
        return Error::new(ErrorKind::FeatureNotSupported, msg.to_string());
    }
    Error::new(ErrorKind::Syntax, msg.to_string())
}

fn arrow_error(e: &ArrowError) -> Error {
    match e {
        ArrowError::DivideByZero => Error::new(ErrorKind::DivisionByZero, "division by zero"),
        ArrowError::CastError(msg) | ArrowError::ParseError(msg) => cast_error(msg),
        ArrowError::ArithmeticOverflow(msg) => Error::new(
            ErrorKind::NumericValueOutOfRange,
            format!("value out of range: {msg}"),
        ),
        ArrowError::ComputeError(msg) if msg.contains("Overflow") || msg.contains("overflow") => {
            Error::new(
                ErrorKind::NumericValueOutOfRange,
                format!("value out of range: {msg}"),
            )
        }
        ArrowError::MemoryError(msg) => Error::new(ErrorKind::OutOfMemory, msg.clone()),
        ArrowError::ComputeError(msg) => execution_error(msg),
        ArrowError::InvalidArgumentError(msg)
            if msg.contains("too large to store in a Decimal") =>
        {
            Error::new(ErrorKind::NumericValueOutOfRange, "numeric field overflow")
                .with_detail(msg.clone())
        }
        ArrowError::ExternalError(inner) => match Error::find_in(inner.as_ref()) {
            Some(ours) => ours.duplicate(),
            None => Error::internal(e.to_string()),
        },
        other => Error::internal(other.to_string()),
    }
}

/// Arrow says "Cannot cast string 'abc' to value of Int32 type"; PostgreSQL
/// says `invalid input syntax for type integer: "abc"`.
fn cast_error(msg: &str) -> Error {
    if msg.starts_with("Can't cast value") {
        // PostgreSQL names the integer type: `integer out of range`.
        let integer = [
            ("Int16", "smallint"),
            ("Int32", "integer"),
            ("Int64", "bigint"),
        ]
        .into_iter()
        .find(|(arrow, _)| msg.trim_end().ends_with(&format!("type {arrow}")));
        if let Some((_, name)) = integer {
            return Error::new(
                ErrorKind::NumericValueOutOfRange,
                format!("{name} out of range"),
            );
        }
        return Error::new(
            ErrorKind::NumericValueOutOfRange,
            format!("value out of range: {msg}"),
        );
    }
    if let Some(value) = first_quoted(msg) {
        let ty = if msg.contains("Int16") {
            Some("smallint")
        } else if msg.contains("Int32") {
            Some("integer")
        } else if msg.contains("Int64") {
            Some("bigint")
        } else if msg.contains("Float") {
            Some("double precision")
        } else if msg.contains("Decimal") {
            Some("numeric")
        } else if msg.contains("Boolean") {
            Some("boolean")
        } else if msg.contains("Date") {
            Some("date")
        } else if msg.contains("Timestamp") {
            Some("timestamp")
        } else {
            None
        };
        if let Some(ty) = ty {
            let kind = if msg.contains("overflow") || msg.contains("too large") {
                ErrorKind::NumericValueOutOfRange
            } else {
                ErrorKind::InvalidTextRepresentation
            };
            if kind == ErrorKind::NumericValueOutOfRange {
                return Error::new(
                    kind,
                    format!("value \"{value}\" is out of range for type {ty}"),
                );
            }
            return Error::new(
                kind,
                format!("invalid input syntax for type {ty}: \"{value}\""),
            );
        }
    }
    if msg.contains("overflow") || msg.contains("too large") || msg.contains("out of range") {
        return Error::new(ErrorKind::NumericValueOutOfRange, msg.to_string());
    }
    Error::new(ErrorKind::InvalidTextRepresentation, msg.to_string())
}

fn execution_error(msg: &str) -> Error {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        return Error::new(ErrorKind::DivisionByZero, "division by zero");
    }
    if lower.contains("overflow") {
        return Error::new(
            ErrorKind::NumericValueOutOfRange,
            format!("value out of range: {msg}"),
        );
    }
    if lower.contains("cannot cast") || lower.contains("cast error") {
        return cast_error(msg);
    }
    // Function arguments PostgreSQL rejects with a class 22 SQLSTATE.
    if lower.contains("square root of a negative number") {
        return Error::new(
            ErrorKind::InvalidArgumentForPower,
            "cannot take square root of a negative number",
        );
    }
    if lower.contains("negative count not allowed") || lower.contains("negative substring length") {
        return Error::new(
            ErrorKind::SubstringError,
            "negative substring length not allowed",
        );
    }
    if lower.contains("field position must not be zero") {
        return Error::new(
            ErrorKind::InvalidParameterValue,
            "field position must not be zero",
        );
    }
    if lower.contains("unable to parse date") || lower.contains("error parsing timestamp") {
        return Error::new(
            ErrorKind::DatetimeFieldOverflow,
            format!("date/time field value out of range: {msg}"),
        );
    }
    if lower.contains("more than one row")
        || lower.contains("scalar subquery") && lower.contains("row")
    {
        return Error::new(
            ErrorKind::CardinalityViolation,
            "more than one row returned by a subquery used as an expression",
        );
    }
    Error::new(ErrorKind::Internal, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_not_found_reads_like_postgres() {
        let e = from_datafusion(DataFusionError::Plan(
            "table 'fusegate.default.nope' not found".into(),
        ));
        assert_eq!(e.kind(), ErrorKind::UndefinedTable);
        assert_eq!(e.message(), "relation \"default.nope\" does not exist");
    }

    #[test]
    fn cast_errors_are_22p02() {
        let e = from_datafusion(DataFusionError::ArrowError(
            Box::new(ArrowError::CastError(
                "Cannot cast string 'abc' to value of Int32 type".into(),
            )),
            None,
        ));
        assert_eq!(e.sqlstate(), "22P02");
        assert_eq!(
            e.message(),
            "invalid input syntax for type integer: \"abc\""
        );
    }

    #[test]
    fn our_errors_pass_through_wrapping() {
        let ours = Error::new(ErrorKind::ObjectNotFound, "gone").with_hint("amend");
        let wrapped = DataFusionError::External(Box::new(parquet::errors::ParquetError::External(
            Box::new(ours),
        )));
        let e = from_datafusion(wrapped.context("scanning"));
        assert_eq!(e.kind(), ErrorKind::ObjectNotFound);
        assert_eq!(e.hint(), Some("amend"));
    }

    #[test]
    fn integer_casts_out_of_range_name_the_type() {
        let e = from_datafusion(DataFusionError::ArrowError(
            Box::new(ArrowError::CastError(
                "Can't cast value 2147483648 to type Int32".into(),
            )),
            None,
        ));
        assert_eq!(e.sqlstate(), "22003");
        assert_eq!(e.message(), "integer out of range");
    }

    #[test]
    fn divide_by_zero_is_22012() {
        let e = from_datafusion(DataFusionError::ArrowError(
            Box::new(ArrowError::DivideByZero),
            None,
        ));
        assert_eq!(e.sqlstate(), "22012");
    }
}
