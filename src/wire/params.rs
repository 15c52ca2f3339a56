//! Bind parameters, decoded by arrow-pg into DataFusion values — after a
//! check that a binary value has its type's size, since some decoders read
//! that many bytes without looking (a 2-byte binary interval panicked; the
//! `params` fuzz target found it). A bad value is PostgreSQL's 22P03.
//! Intervals, and int8 seconds bound to a timestamp, are range-checked
//! first too: arrow-pg converts them with unchecked multiplications (22008).
//! Array parameters are checked and rewritten first (see `array_param`).

use arrow::datatypes::{DataType, TimeUnit};
use bytes::Bytes;
use datafusion::common::ParamValues;
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::messages::extendedquery::Bind;

use super::array_param;
use super::error::from_pgwire;
use crate::error::{Error, ErrorKind};

/// Decodes `portal`'s parameters; `inferred` are the types the plan expects.
pub fn decode<S: Clone>(
    portal: &Portal<S>,
    inferred: &[Option<&DataType>],
) -> Result<ParamValues, Error> {
    // Array parameters may need another text or another target type.
    let mut texts: Vec<Option<Bytes>> = portal.parameters.clone();
    let mut targets: Vec<Option<DataType>> = (0..portal.parameters.len())
        .map(|i| inferred.get(i).copied().flatten().cloned())
        .collect();
    let mut rewritten = false;
    // The type a parameter is decoded as: the client's, or the plan's.
    let param_type = |i: usize| {
        let hinted = portal.statement.parameter_types.get(i).cloned().flatten();
        hinted.or_else(|| {
            inferred
                .get(i)
                .copied()
                .flatten()
                .and_then(|t| arrow_pg::datatypes::into_pg_type(t).ok())
        })
    };
    for (i, value) in portal.parameters.iter().enumerate() {
        let Some(value) = value else { continue };
        let ty = param_type(i);
        let binary = portal.parameter_format.is_binary(i);
        if let Some(ty) = &ty
            && let Some(prepared) =
                array_param::prepare(i + 1, ty, value, binary, inferred.get(i).copied().flatten())?
        {
            if let Some(text) = prepared.text {
                texts[i] = Some(Bytes::from(text));
                rewritten = true;
            }
            if let Some(target) = prepared.inferred {
                targets[i] = Some(target);
                rewritten = true;
            }
        }
        if !binary {
            continue;
        }
        let malformed = || {
            Error::new(
                ErrorKind::InvalidBinaryRepresentation,
                format!("incorrect binary data format in bind parameter {}", i + 1),
            )
        };
        if let Some(size) = ty.as_ref().and_then(binary_size)
            && value.len() != size
        {
            return Err(malformed());
        }
        if ty == Some(Type::NUMERIC) {
            check_numeric(value).map_err(|overflow| match overflow {
                true => Error::new(
                    ErrorKind::NumericValueOutOfRange,
                    format!("bind parameter {} is outside the numeric range fusegate accepts as a binary parameter (28 digits)", i + 1),
                ),
                false => malformed(),
            })?;
        }
    }
    // Should arrow-pg still panic on a value the checks above let through,
    // that must cost the statement, not the connection.
    let replaced;
    let portal = if rewritten {
        let formats = (0..texts.len())
            .map(|i| i16::from(portal.parameter_format.is_binary(i)))
            .collect();
        let bind = Bind::new(None, None, formats, texts, Vec::new());
        replaced = Portal::try_new(&bind, portal.statement.clone()).map_err(from_pgwire)?;
        &replaced
    } else {
        portal
    };
    for (i, target) in targets.iter().enumerate() {
        let ty = param_type(i);
        check_interval_range(portal, i, ty.clone())?;
        check_seconds_as_timestamp(portal, i, ty, target.as_ref())?;
    }
    let targets: Vec<Option<&DataType>> = targets.iter().map(Option::as_ref).collect();
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arrow_pg::datatypes::df::deserialize_parameters(portal, &targets)
    }));
    match decoded {
        Ok(result) => result.map_err(from_pgwire),
        Err(_) => Err(Error::new(
            ErrorKind::InvalidParameterValue,
            "a bind parameter could not be decoded as its type",
        )),
    }
}

/// An interval parameter must fit DataFusion's nanosecond intervals, which
/// hold ±2,562,047 hours in their time part where PostgreSQL's microseconds
/// hold 1,000 times more: arrow-pg multiplies by 1,000 unchecked, so a larger
/// one would silently wrap around to another value (the `params` fuzz target
/// found it as an overflow panic in a debug build). Undecodable values are
/// left to arrow-pg, which reports them.
fn check_interval_range<S: Clone>(
    portal: &Portal<S>,
    i: usize,
    ty: Option<Type>,
) -> Result<(), Error> {
    use pg_interval::Interval;
    let fits = |v: &Option<Interval>| {
        v.as_ref()
            .is_none_or(|v| v.microseconds.checked_mul(1_000).is_some())
    };
    let ok = match ty {
        Some(Type::INTERVAL) => portal
            .parameter::<Interval>(i, &Type::INTERVAL)
            .map_or(true, |v| fits(&v)),
        Some(Type::INTERVAL_ARRAY) => portal
            .parameter::<Vec<Option<Interval>>>(i, &Type::INTERVAL_ARRAY)
            .map_or(true, |v| v.is_none_or(|v| v.iter().all(fits))),
        _ => true,
    };
    match ok {
        true => Ok(()),
        false => Err(Error::new(
            ErrorKind::DatetimeFieldOverflow,
            format!(
                "interval out of range: bind parameter {} has more than the 2,562,047 hours (in its time part) that fusegate's intervals hold",
                i + 1
            ),
        )),
    }
}

/// arrow-pg reads an int8 parameter bound to a timestamp as seconds since
/// 1970 and multiplies it unchecked into the timestamp's unit, so a large
/// one would wrap around to another time (found by the `params` fuzz target).
fn check_seconds_as_timestamp<S: Clone>(
    portal: &Portal<S>,
    i: usize,
    ty: Option<Type>,
    target: Option<&DataType>,
) -> Result<(), Error> {
    let per_second: i64 = match (ty, target) {
        (Some(Type::INT8), Some(DataType::Timestamp(unit, _))) => match unit {
            TimeUnit::Second => return Ok(()),
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        },
        _ => return Ok(()),
    };
    match portal.parameter::<i64>(i, &Type::INT8) {
        Ok(Some(n)) if n.checked_mul(per_second).is_none() => Err(Error::new(
            ErrorKind::DatetimeFieldOverflow,
            format!(
                "timestamp out of range: bind parameter {} ({n} seconds since 1970)",
                i + 1
            ),
        )),
        _ => Ok(()),
    }
}

/// The size of a fixed-size type's binary form.
fn binary_size(ty: &Type) -> Option<usize> {
    Some(match *ty {
        Type::BOOL | Type::CHAR => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::OID | Type::FLOAT4 | Type::DATE => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIME | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
        Type::TIMETZ => 12,
        Type::INTERVAL | Type::UUID => 16,
        _ => return None,
    })
}

/// Checks a binary NUMERIC (ndigits, weight, sign, dscale, then base-10000
/// digits) as PostgreSQL's numeric_recv does, and that it fits the decimal
/// arrow-pg decodes it into (28 digits; beyond, its decoder panics).
/// `Err(true)`: too large; `Err(false)`: malformed.
pub(super) fn check_numeric(raw: &[u8]) -> Result<(), bool> {
    let word = |i: usize| -> Result<u16, bool> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(false)
    };
    let ndigits = usize::from(word(0)?);
    let weight = word(2)? as i16;
    let sign = word(4)?;
    let dscale = word(6)?;
    if raw.len() != 8 + 2 * ndigits
        || !matches!(sign, 0x0000 | 0x4000 | 0xC000 | 0xD000 | 0xF000)
        || dscale > 0x3FFF
    {
        return Err(false);
    }
    for d in 0..ndigits {
        if word(8 + 2 * d)? > 9999 {
            return Err(false);
        }
    }
    // The groups from the highest (10000^weight, or the units) down to the
    // lowest digit (or the units) make the decimal's mantissa: 7 groups are
    // 28 digits. The decoder uses the weight even with no digits.
    let lowest = i32::from(weight) - ndigits as i32 + 1;
    let span = i32::from(weight).max(0) - lowest.min(0) + 1;
    if dscale > 28 || span > 7 {
        return Err(true);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pgwire::api::stmt::StoredStatement;

    use super::*;

    fn portal(ty: Type, binary: bool, value: &[u8]) -> Portal<()> {
        let statement = StoredStatement::new("t".to_string(), (), vec![Some(ty)]);
        let bind = Bind::new(
            None,
            None,
            vec![i16::from(binary)],
            vec![Some(Bytes::copy_from_slice(value))],
            vec![],
        );
        Portal::try_new(&bind, Arc::new(statement)).expect("portal")
    }

    #[test]
    fn int8_seconds_that_overflow_a_timestamp_are_refused() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let ok = portal(Type::INT8, false, b"1700000000");
        assert!(decode(&ok, &[Some(&ts)]).is_ok());
        let huge = portal(Type::INT8, true, &i64::MAX.to_be_bytes());
        let err = decode(&huge, &[Some(&ts)]).expect_err("overflow");
        assert_eq!(err.kind(), ErrorKind::DatetimeFieldOverflow, "{err}");
        // In seconds it fits as it is.
        let secs = DataType::Timestamp(TimeUnit::Second, None);
        assert!(decode(&huge, &[Some(&secs)]).is_ok());
    }
}
