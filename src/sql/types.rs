//! SQL type names → the column types fusegate stores.

use sqlparser::ast::{CharacterLength, DataType, ExactNumberInfo, TimezoneInfo};

use crate::error::{Error, ErrorKind, Result};
use crate::fuse::schema::{ColumnType, DEFAULT_DECIMAL};

/// The widest DECIMAL Arrow's Decimal128 can hold.
const MAX_DECIMAL_PRECISION: u64 = 38;

pub fn column_type(data_type: &DataType) -> Result<ColumnType> {
    use DataType as D;
    Ok(match data_type {
        D::SmallInt(_) | D::Int2(_) | D::TinyInt(_) | D::Int16 => ColumnType::Int16,
        D::Int(_) | D::Integer(_) | D::Int4(_) | D::MediumInt(_) | D::Int32 => ColumnType::Int32,
        D::BigInt(_) | D::Int8(_) | D::Int64 => ColumnType::Int64,
        D::Real | D::Float4 | D::Float32 => ColumnType::Float32,
        D::Double(_) | D::DoublePrecision | D::Float8 | D::Float64 => ColumnType::Float64,
        D::Float(info) => match info {
            ExactNumberInfo::Precision(p) | ExactNumberInfo::PrecisionAndScale(p, _)
                if *p <= 24 =>
            {
                ColumnType::Float32
            }
            _ => ColumnType::Float64,
        },
        D::Decimal(info) | D::Numeric(info) | D::Dec(info) => decimal(info)?,
        D::Varchar(len) | D::CharacterVarying(len) | D::Nvarchar(len) => ColumnType::Varchar {
            length: char_length(len.as_ref())?,
        },
        // CHAR(n) is kept as VARCHAR(n): values are not blank-padded.
        D::Char(len) | D::Character(len) => ColumnType::Varchar {
            length: Some(char_length(len.as_ref())?.unwrap_or(1)),
        },
        D::Text | D::String(_) => ColumnType::Text,
        D::Boolean | D::Bool => ColumnType::Boolean,
        D::Date => ColumnType::Date,
        D::Timestamp(None, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone)
        | D::Datetime(None) => ColumnType::Timestamp,
        D::Timestamp(Some(p), TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) if *p >= 6 => {
            ColumnType::Timestamp
        }
        D::Timestamp(None, TimezoneInfo::Tz | TimezoneInfo::WithTimeZone) => {
            ColumnType::TimestampTz
        }
        D::Timestamp(Some(p), TimezoneInfo::Tz | TimezoneInfo::WithTimeZone) if *p >= 6 => {
            ColumnType::TimestampTz
        }
        D::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "string" => ColumnType::Text,
                "int16" => ColumnType::Int16,
                "int32" => ColumnType::Int32,
                "int64" => ColumnType::Int64,
                "float32" => ColumnType::Float32,
                "float64" => ColumnType::Float64,
                other => return Err(unsupported(other)),
            }
        }
        other => return Err(unsupported(&other.to_string())),
    })
}

fn unsupported(name: &str) -> Error {
    Error::new(
        ErrorKind::FeatureNotSupported,
        format!("type \"{name}\" is not supported for table columns"),
    )
    .with_hint("Supported: smallint, integer, bigint, real, double precision, numeric(p,s), varchar(n), text, boolean, date, timestamp.")
}

fn decimal(info: &ExactNumberInfo) -> Result<ColumnType> {
    let (precision, scale) = match info {
        ExactNumberInfo::None => return Ok(decimal_type(DEFAULT_DECIMAL.0, DEFAULT_DECIMAL.1)),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if precision == 0 || precision > MAX_DECIMAL_PRECISION {
        return Err(Error::new(
            ErrorKind::InvalidParameterValue,
            format!("NUMERIC precision {precision} must be between 1 and {MAX_DECIMAL_PRECISION}"),
        ));
    }
    if scale < 0 || scale as u64 > precision {
        return Err(Error::new(
            ErrorKind::InvalidParameterValue,
            format!("NUMERIC scale {scale} must be between 0 and precision {precision}"),
        ));
    }
    Ok(decimal_type(precision as u8, scale as i8))
}

fn decimal_type(precision: u8, scale: i8) -> ColumnType {
    ColumnType::Decimal { precision, scale }
}

fn char_length(len: Option<&CharacterLength>) -> Result<Option<u32>> {
    match len {
        None | Some(CharacterLength::Max) => Ok(None),
        Some(CharacterLength::IntegerLength { length, .. }) => {
            if *length == 0 || *length > 10_485_760 {
                return Err(Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!("length for type varchar must be between 1 and 10485760, not {length}"),
                ));
            }
            Ok(Some(*length as u32))
        }
    }
}
