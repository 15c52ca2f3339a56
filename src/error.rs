//! The one error type of fusegate.
//!
//! Every layer turns its library's errors into [`Error`] at its boundary
//! (storage: OpenDAL, fuse: parquet/serde, query: DataFusion, sql: sqlparser),
//! adding context once. [`ErrorKind::sqlstate`] is the only place where an
//! error becomes a PostgreSQL SQLSTATE.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the terms a client can act on. Each kind maps to exactly
/// one SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 42601: the statement does not parse.
    Syntax,
    /// 42P01
    UndefinedTable,
    /// 42703
    UndefinedColumn,
    /// 42883
    UndefinedFunction,
    /// 3D000
    UndefinedDatabase,
    /// 42704: an object other than a table, column or database (a setting, a snapshot, a type).
    UndefinedObject,
    /// 42P07
    DuplicateTable,
    /// 42P04
    DuplicateDatabase,
    /// 42701
    DuplicateColumn,
    /// 42702
    AmbiguousColumn,
    /// 42804: a value of one type where another is required.
    DatatypeMismatch,
    /// 42846
    CannotCoerce,
    /// 42P18
    IndeterminateDatatype,
    /// 42803
    Grouping,
    /// 42P10
    InvalidColumnReference,
    /// 22P02: text that is not a valid value of its type.
    InvalidTextRepresentation,
    /// 22P03: a bind parameter's binary value is malformed.
    InvalidBinaryRepresentation,
    /// 22007
    InvalidDatetimeFormat,
    /// 22008
    DatetimeFieldOverflow,
    /// 22003
    NumericValueOutOfRange,
    /// 22001
    StringDataRightTruncation,
    /// 22012
    DivisionByZero,
    /// 22023
    InvalidParameterValue,
    /// 22004
    NullValueNotAllowed,
    /// 22P04: COPY data that does not fit the table (missing or extra columns).
    BadCopyFileFormat,
    /// 21000: a scalar subquery returned more than one row.
    CardinalityViolation,
    /// 23502
    NotNullViolation,
    /// 0A000
    FeatureNotSupported,
    /// 42501
    InsufficientPrivilege,
    /// 2BP01: DROP DATABASE of a database that still holds tables.
    DependentObjectsStillExist,
    /// 55006
    ObjectInUse,
    /// 55000: the object is not in the state the command needs (an unversioned bucket for Fail-Safe).
    ObjectNotInPrerequisiteState,
    /// 40001: a concurrent writer changed what this statement read.
    SerializationFailure,
    /// 40003: a commit was sent but whether it took effect could not be
    /// told (its answer was lost and checking failed too).
    CompletionUnknown,
    /// 25P02
    InFailedTransaction,
    /// 25001
    ActiveTransaction,
    /// 25P01
    NoActiveTransaction,
    /// 57014
    QueryCanceled,
    /// 57P01: the server is shutting down.
    AdminShutdown,
    /// 57P05: idle_session_timeout ended the session.
    IdleSessionTimeout,
    /// 25P03: idle_in_transaction_session_timeout ended the session.
    IdleInTransactionTimeout,
    /// 53200
    OutOfMemory,
    /// 53300
    TooManyConnections,
    /// 54001
    StatementTooComplex,
    /// 58P01: an object the table needs is missing from its storage.
    ObjectNotFound,
    /// 58030: storage failed (unreachable endpoint, denied access, I/O error).
    StorageIo,
    /// 22000: a table object that exists but cannot be decoded.
    DataCorrupted,
    /// 08P01
    ProtocolViolation,
    /// 3B001: no savepoint of that name.
    InvalidSavepoint,
    /// 2201F: e.g. the square root of a negative number.
    InvalidArgumentForPower,
    /// 2201G: a bad count or bounds for width_bucket.
    InvalidArgumentForWidthBucket,
    /// 22011: a negative substring length.
    SubstringError,
    /// 54000: a value larger than PostgreSQL allows (1 GB).
    ProgramLimitExceeded,
    /// 26000: no prepared statement of that name.
    InvalidStatementName,
    /// 28000
    InvalidAuthorization,
    /// 28P01
    InvalidPassword,
    /// XX000: a bug; the message says what it was.
    Internal,
}

impl ErrorKind {
    /// The SQLSTATE a client sees for this kind of error.
    pub fn sqlstate(self) -> &'static str {
        use ErrorKind::*;
        match self {
            Syntax => "42601",
            UndefinedTable => "42P01",
            UndefinedColumn => "42703",
            UndefinedFunction => "42883",
            UndefinedDatabase => "3D000",
            UndefinedObject => "42704",
            DuplicateTable => "42P07",
            DuplicateDatabase => "42P04",
            DuplicateColumn => "42701",
            AmbiguousColumn => "42702",
            DatatypeMismatch => "42804",
            CannotCoerce => "42846",
            IndeterminateDatatype => "42P18",
            Grouping => "42803",
            InvalidColumnReference => "42P10",
            InvalidTextRepresentation => "22P02",
            InvalidBinaryRepresentation => "22P03",
            InvalidDatetimeFormat => "22007",
            DatetimeFieldOverflow => "22008",
            NumericValueOutOfRange => "22003",
            StringDataRightTruncation => "22001",
            DivisionByZero => "22012",
            InvalidParameterValue => "22023",
            NullValueNotAllowed => "22004",
            BadCopyFileFormat => "22P04",
            CardinalityViolation => "21000",
            NotNullViolation => "23502",
            FeatureNotSupported => "0A000",
            InsufficientPrivilege => "42501",
            DependentObjectsStillExist => "2BP01",
            ObjectInUse => "55006",
            ObjectNotInPrerequisiteState => "55000",
            SerializationFailure => "40001",
            CompletionUnknown => "40003",
            InFailedTransaction => "25P02",
            ActiveTransaction => "25001",
            NoActiveTransaction => "25P01",
            QueryCanceled => "57014",
            AdminShutdown => "57P01",
            IdleSessionTimeout => "57P05",
            IdleInTransactionTimeout => "25P03",
            OutOfMemory => "53200",
            TooManyConnections => "53300",
            StatementTooComplex => "54001",
            ObjectNotFound => "58P01",
            StorageIo => "58030",
            DataCorrupted => "22000",
            ProtocolViolation => "08P01",
            InvalidStatementName => "26000",
            ProgramLimitExceeded => "54000",
            InvalidArgumentForPower => "2201F",
            InvalidArgumentForWidthBucket => "2201G",
            SubstringError => "22011",
            InvalidSavepoint => "3B001",
            InvalidAuthorization => "28000",
            InvalidPassword => "28P01",
            Internal => "XX000",
        }
    }
}

/// A fusegate error: a kind, a message for people, optional detail, hint and
/// where it happened (the ErrorResponse's D, H and W fields; psql prints W as
/// CONTEXT), whether retrying may help, and the underlying cause.
pub struct Error {
    kind: ErrorKind,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    location: Option<String>,
    temporary: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
            location: None,
            temporary: false,
            source: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Where in the work the error happened, e.g. `COPY t, line 3`.
    pub fn with_location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Marks the error as one a retry of the same operation may cure.
    pub fn set_temporary(mut self) -> Self {
        self.temporary = true;
        self
    }

    /// Prefixes the message with where it happened ("reading table t: ...").
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// After a failed commit: whether it may have taken effect anyway, in
    /// which case what it wrote must be kept, not cleaned up.
    pub fn commit_may_have_happened(&self) -> bool {
        self.kind == ErrorKind::CompletionUnknown
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    pub fn sqlstate(&self) -> &'static str {
        self.kind.sqlstate()
    }

    /// A copy without the source chain (errors found by reference inside another
    /// library's error chain are re-raised this way).
    pub fn duplicate(&self) -> Error {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            detail: self.detail.clone(),
            hint: self.hint.clone(),
            location: self.location.clone(),
            temporary: self.temporary,
            source: None,
        }
    }

    /// Finds a fusegate error anywhere in `err`'s source chain.
    pub fn find_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<Error>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::FeatureNotSupported, message)
    }

    pub fn syntax(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Syntax, message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(detail) = &self.detail {
            d.field("detail", detail);
        }
        if let Some(hint) = &self.hint {
            d.field("hint", hint);
        }
        if let Some(location) = &self.location {
            d.field("location", location);
        }
        if self.temporary {
            d.field("temporary", &true);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::new(ErrorKind::StorageIo, err.to_string()).with_source(err)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::new(ErrorKind::DataCorrupted, format!("invalid metadata: {err}")).with_source(err)
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(err: arrow::error::ArrowError) -> Self {
        use arrow::error::ArrowError;
        let kind = match &err {
            ArrowError::DivideByZero => ErrorKind::DivisionByZero,
            ArrowError::CastError(_) | ArrowError::ParseError(_) => {
                ErrorKind::InvalidTextRepresentation
            }
            ArrowError::ArithmeticOverflow(_) => ErrorKind::NumericValueOutOfRange,
            ArrowError::MemoryError(_) => ErrorKind::OutOfMemory,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, err.to_string()).with_source(err)
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(err: parquet::errors::ParquetError) -> Self {
        // A storage error under the Parquet reader (fetching a block's bytes)
        // is a storage error, not a corrupt block.
        if let Some(ours) = Error::find_in(&err) {
            return ours.duplicate();
        }
        Error::new(ErrorKind::DataCorrupted, format!("parquet: {err}")).with_source(err)
    }
}

/// Returns early with an [`Error`] of the given kind and formatted message.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($arg:tt)*) => {
        return Err($crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($arg)*)))
    };
}
