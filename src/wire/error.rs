//! fusegate errors → ErrorResponse. The SQLSTATE comes from the error's kind
//! (`ErrorKind::sqlstate`); nothing here decides it.

use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::{Error, ErrorKind};

pub fn to_pgwire(err: Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&err, "ERROR")))
}

/// A FATAL error: the server closes the connection after sending it.
pub fn fatal(err: Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&err, "FATAL")))
}

fn error_info(err: &Error, severity: &str) -> ErrorInfo {
    let mut info = ErrorInfo::new(
        severity.to_string(),
        err.sqlstate().to_string(),
        err.message().to_string(),
    );
    info.detail = err.detail().map(str::to_string);
    info.hint = err.hint().map(str::to_string);
    info.where_context = err.location().map(str::to_string);
    info
}

/// Errors pgwire raises itself (bad parameters and the like) keep their own
/// SQLSTATE; an opaque API error is reported as an internal one.
pub fn from_pgwire(err: PgWireError) -> Error {
    match err {
        PgWireError::UserError(info) => {
            let kind = match info.code.as_str() {
                "22P02" => ErrorKind::InvalidTextRepresentation,
                "22023" => ErrorKind::InvalidParameterValue,
                "22003" => ErrorKind::NumericValueOutOfRange,
                "08P01" => ErrorKind::ProtocolViolation,
                "42804" => ErrorKind::DatatypeMismatch,
                _ => ErrorKind::InvalidParameterValue,
            };
            Error::new(kind, info.message)
        }
        other => Error::new(ErrorKind::InvalidParameterValue, other.to_string()),
    }
}
