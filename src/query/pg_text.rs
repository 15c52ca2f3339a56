//! PostgreSQL's text forms of values, where Arrow's differ: the output of
//! timestamps (`2024-01-02 03:04:05.5`, not `2024-01-02T03:04:05.500`),
//! floats (`1`, `1e+20`, `Infinity`, not `1.0`, `1e20`, `inf`), times
//! (`08:00:00`) and intervals (`1 day 12:00:00`, `-1 days +02:00:00`), which the
//! wire sends and casts to text give; and the input of timestamps, which
//! casts from text read (`2024-01-01 9:30`, field ranges checked with
//! PostgreSQL's SQLSTATEs).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{
    DataType, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, Float32Type, Float64Type, IntervalDayTimeType, IntervalMonthDayNanoType,
    IntervalUnit, IntervalYearMonthType, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{Error, ErrorKind};
use crate::fuse::schema::ColumnType;

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` with trailing zeros of the fraction
/// dropped; `with_offset` adds the session's offset (`+00`: fusegate's
/// TimeZone is UTC), as PostgreSQL writes a `timestamptz`.
pub fn timestamp(micros: i64, with_offset: bool) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let Some(dt) = chrono::DateTime::from_timestamp(secs, 0) else {
        return micros.to_string();
    };
    let naive = dt.naive_utc();
    let year = chrono::Datelike::year(&naive);
    // PostgreSQL writes 1 BC (year 0) as "0001-... BC", and 10000 without
    // chrono's `+`.
    let era_year = if year <= 0 { 1 - year } else { year };
    let mut s = format!("{era_year:04}-{}", naive.format("%m-%d %H:%M:%S"));
    if frac != 0 {
        let digits = format!("{frac:06}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    if with_offset {
        s.push_str("+00");
    }
    if year <= 0 {
        s.push_str(" BC");
    }
    s
}

/// float8 output with extra_float_digits >= 1: the shortest digits that read
/// back exactly, fixed notation for decimal exponents in [-4, 15), else `e±XX`.
pub fn float8(v: f64) -> String {
    float_text(v, ryu::Buffer::new().format_finite(v), 15)
}

pub fn float4(v: f32) -> String {
    float_text(v as f64, ryu::Buffer::new().format_finite(v), 6)
}

fn float_text(v: f64, shortest: &str, precision: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Split ryu's output into sign, digits and decimal exponent.
    let (negative, body) = match shortest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, shortest),
    };
    let (mantissa, exp_part) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int_part}{frac_part}");
    // Position of the decimal point relative to the start of `digits`.
    let mut point = int_part.len() as i32 + exp_part;
    let leading = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..leading);
    point -= leading as i32;
    let digits = digits.trim_end_matches('0').to_string();
    let exponent = point - 1;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exponent < -4 || exponent >= precision {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        ));
    } else if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-point) as usize));
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.push_str(&"0".repeat(point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

/// Whether `output` writes `data_type` differently from Arrow's cast to text.
pub fn renders(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Timestamp(_, _)
            | DataType::Float32
            | DataType::Float64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Interval(_)
            | DataType::Duration(_)
    )
}

/// `array` (of a type `renders` accepts; others come back as they are) as
/// PostgreSQL's text.
pub fn output(array: &ArrayRef) -> ArrayRef {
    let strings: StringArray = match array.data_type() {
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(float8))
            .collect(),
        DataType::Float32 => array
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(float4))
            .collect(),
        DataType::Timestamp(unit, zone) => {
            let with_offset = zone.is_some();
            micros(array, *unit)
                .map(|v| v.map(|m| timestamp(m, with_offset)))
                .collect()
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            time_micros(array).map(|v| v.map(time)).collect()
        }
        DataType::Duration(_) => duration_micros(array)
            .map(|v| {
                // The difference of two timestamps: PostgreSQL justifies
                // whole days out of the hours (`1 day 12:00:00`).
                v.map(|m| interval(0, m / 86_400_000_000, m % 86_400_000_000))
            })
            .collect(),
        DataType::Interval(unit) => interval_parts(array, *unit)
            .map(|v| v.map(|(months, days, micros)| interval(months, days, micros)))
            .collect(),
        _ => return array.clone(),
    };
    Arc::new(strings)
}

/// `HH:MM:SS[.ffffff]`, trailing zeros of the fraction dropped.
pub fn time(micros: i64) -> String {
    let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    push_fraction(&mut s, frac);
    s
}

fn push_fraction(s: &mut String, micros: i64) {
    if micros != 0 {
        s.push('.');
        s.push_str(format!("{micros:06}").trim_end_matches('0'));
    }
}

/// An interval as PostgreSQL writes it (IntervalStyle `postgres`):
/// `1 year 2 mons`, `-1 days +02:00:00`, `00:00:01.5`.
pub fn interval(months: i64, days: i64, micros: i64) -> String {
    let mut out = String::new();
    // Whether nothing is written yet, and whether the last part was
    // negative (a positive one after it then gets a `+`).
    let (mut empty, mut after_negative) = (true, false);
    for (value, unit) in [(months / 12, "year"), (months % 12, "mon"), (days, "day")] {
        if value == 0 {
            continue;
        }
        if !empty {
            out.push(' ');
        }
        if after_negative && value > 0 {
            out.push('+');
        }
        out.push_str(&format!(
            "{value} {unit}{}",
            if value == 1 { "" } else { "s" }
        ));
        (empty, after_negative) = (false, value < 0);
    }
    if empty || micros != 0 {
        if !empty {
            out.push(' ');
        }
        if micros < 0 {
            out.push('-');
        } else if after_negative {
            out.push('+');
        }
        let abs = micros.unsigned_abs();
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            abs / 3_600_000_000,
            abs / 60_000_000 % 60,
            abs / 1_000_000 % 60
        ));
        push_fraction(&mut out, (abs % 1_000_000) as i64);
    }
    out
}

/// A time-of-day array's values in microseconds.
fn time_micros(array: &ArrayRef) -> Box<dyn Iterator<Item = Option<i64>> + '_> {
    match array.data_type() {
        DataType::Time32(TimeUnit::Second) => Box::new(
            array
                .as_primitive::<Time32SecondType>()
                .iter()
                .map(|v| v.map(|s| i64::from(s) * 1_000_000)),
        ),
        DataType::Time32(_) => Box::new(
            array
                .as_primitive::<Time32MillisecondType>()
                .iter()
                .map(|v| v.map(|s| i64::from(s) * 1_000)),
        ),
        DataType::Time64(TimeUnit::Nanosecond) => Box::new(
            array
                .as_primitive::<Time64NanosecondType>()
                .iter()
                .map(|v| v.map(|s| s.div_euclid(1_000))),
        ),
        _ => Box::new(array.as_primitive::<Time64MicrosecondType>().iter()),
    }
}

/// A duration array's values in microseconds (nanoseconds truncated).
fn duration_micros(array: &ArrayRef) -> Box<dyn Iterator<Item = Option<i64>> + '_> {
    match array.data_type() {
        DataType::Duration(TimeUnit::Second) => Box::new(
            array
                .as_primitive::<DurationSecondType>()
                .iter()
                .map(|v| v.map(|s| s.saturating_mul(1_000_000))),
        ),
        DataType::Duration(TimeUnit::Millisecond) => Box::new(
            array
                .as_primitive::<DurationMillisecondType>()
                .iter()
                .map(|v| v.map(|s| s.saturating_mul(1_000))),
        ),
        DataType::Duration(TimeUnit::Nanosecond) => Box::new(
            array
                .as_primitive::<DurationNanosecondType>()
                .iter()
                .map(|v| v.map(|s| s / 1_000)),
        ),
        _ => Box::new(array.as_primitive::<DurationMicrosecondType>().iter()),
    }
}

/// An interval array's values as (months, days, microseconds).
fn interval_parts(
    array: &ArrayRef,
    unit: IntervalUnit,
) -> Box<dyn Iterator<Item = Option<(i64, i64, i64)>> + '_> {
    match unit {
        IntervalUnit::YearMonth => Box::new(
            array
                .as_primitive::<IntervalYearMonthType>()
                .iter()
                .map(|v| v.map(|m| (i64::from(m), 0, 0))),
        ),
        IntervalUnit::DayTime => Box::new(
            array
                .as_primitive::<IntervalDayTimeType>()
                .iter()
                .map(|v| v.map(|d| (0, i64::from(d.days), i64::from(d.milliseconds) * 1_000))),
        ),
        IntervalUnit::MonthDayNano => Box::new(
            array
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| {
                    v.map(|i| {
                        (
                            i64::from(i.months),
                            i64::from(i.days),
                            i.nanoseconds / 1_000,
                        )
                    })
                }),
        ),
    }
}

/// A timestamp array's values in microseconds (PostgreSQL's precision;
/// nanoseconds are floored, as the wire's binary form does).
fn micros(array: &ArrayRef, unit: TimeUnit) -> Box<dyn Iterator<Item = Option<i64>> + '_> {
    match unit {
        TimeUnit::Second => Box::new(
            array
                .as_primitive::<TimestampSecondType>()
                .iter()
                .map(|v| v.map(|s| s * 1_000_000)),
        ),
        TimeUnit::Millisecond => Box::new(
            array
                .as_primitive::<TimestampMillisecondType>()
                .iter()
                .map(|v| v.map(|s| s * 1_000)),
        ),
        TimeUnit::Microsecond => Box::new(array.as_primitive::<TimestampMicrosecondType>().iter()),
        TimeUnit::Nanosecond => Box::new(
            array
                .as_primitive::<TimestampNanosecondType>()
                .iter()
                .map(|v| v.map(|s| s.div_euclid(1_000))),
        ),
    }
}

/// Reads a timestamp as PostgreSQL's input function does, in microseconds
/// since 1970: `YYYY-MM-DD`, then optionally a time (`H:MM`, `HH:MM:SS`,
/// a fraction rounded to microseconds, `24:00:00`, a leap second) after a
/// space or `T`, then optionally a zone (`Z`, `UTC`, `+02`, `-03:30`, a
/// name such as `Europe/Paris`); or `epoch`. `with_zone` (timestamptz)
/// applies the zone, UTC when none is given (fusegate's TimeZone);
/// without it a zone is read and ignored, as in PostgreSQL. Malformed text
/// is 22007, a field out of its range 22008.
pub fn parse_timestamp(text: &str, with_zone: bool) -> Result<i64, Error> {
    let type_name = if with_zone {
        "timestamp with time zone"
    } else {
        "timestamp"
    };
    let syntax = || {
        Error::new(
            ErrorKind::InvalidDatetimeFormat,
            format!("invalid input syntax for type {type_name}: \"{text}\""),
        )
    };
    let range = || {
        Error::new(
            ErrorKind::DatetimeFieldOverflow,
            format!("date/time field value out of range: \"{text}\""),
        )
    };
    let s = text.trim();
    if s.eq_ignore_ascii_case("epoch") {
        return Ok(0);
    }
    let split = s.find([' ', 'T', 't']).unwrap_or(s.len());
    let (date, rest) = s.split_at(split);
    let date = parse_date(date).ok_or_else(syntax)?;
    let date = NaiveDate::from_ymd_opt(date.0, date.1, date.2).ok_or_else(range)?;
    let rest = rest.get(1..).unwrap_or("").trim_start();
    let (clock, zone) = match rest.find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.')) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    // A zone written without a time (`2024-01-01 +02`) is not a time.
    let (hour, minute, second, micros) = if clock.is_empty() {
        (0, 0, 0, 0)
    } else {
        parse_clock(clock).ok_or_else(syntax)?
    };
    if hour > 24
        || minute > 59
        || second > 60
        || (hour == 24 && (minute, second, micros) != (0, 0, 0))
    {
        return Err(range());
    }
    // 24:00:00 is the next midnight and :60 the next minute, as in PostgreSQL.
    let (hour, next_day) = if hour == 24 {
        (0, 86_400_000_000)
    } else {
        (hour, 0)
    };
    let base = NaiveDateTime::new(
        date,
        NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(range)?,
    );
    let wall =
        base.and_utc().timestamp_micros() + next_day + i64::from(second) * 1_000_000 + micros;
    let zone = zone.trim();
    let offset_secs = if zone.is_empty() {
        0
    } else {
        zone_offset(zone, base).ok_or_else(syntax)?
    };
    Ok(if with_zone {
        wall - offset_secs * 1_000_000
    } else {
        wall
    })
}

/// `YYYY-MM-DD` (a year of four or more digits) as numbers, unchecked.
fn parse_date(text: &str) -> Option<(i32, u32, u32)> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |p: &str, lens: std::ops::RangeInclusive<usize>| {
        lens.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    };
    if parts.next().is_some() || !digits(y, 4..=6) || !digits(m, 1..=2) || !digits(d, 1..=2) {
        return None;
    }
    Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
}

/// `H[H]:MM[:SS[.fraction]]` as (hour, minute, second, microseconds), the
/// fraction rounded half up to microseconds; fields unchecked.
fn parse_clock(text: &str) -> Option<(u32, u32, u32, i64)> {
    let (hms, fraction) = match text.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (text, None),
    };
    let mut parts = hms.split(':');
    let hour = parts.next().filter(|p| (1..=2).contains(&p.len()))?;
    let minute = parts.next().filter(|p| p.len() == 2)?;
    let second = match parts.next() {
        Some(p) if p.len() == 2 => p,
        Some(_) => return None,
        None if fraction.is_some() => return None,
        None => "0",
    };
    if parts.next().is_some() {
        return None;
    }
    let number = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| p.parse().ok())?
    };
    let micros = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            let up = f.as_bytes().get(6).is_some_and(|&b| b >= b'5');
            six.parse::<i64>().ok()? + i64::from(up)
        }
        Some(_) => return None,
    };
    Some((number(hour)?, number(minute)?, number(second)?, micros))
}

/// A zone's offset east of UTC in seconds at local time `at`: `Z`, `UTC`,
/// `GMT`, `±HH[[:]MM]`, or a name from the tz database.
fn zone_offset(zone: &str, at: NaiveDateTime) -> Option<i64> {
    if ["z", "utc", "gmt", "zulu"].contains(&zone.to_ascii_lowercase().as_str()) {
        return Some(0);
    }
    if let Some(sign) = zone
        .strip_prefix('+')
        .map(|r| (1, r))
        .or_else(|| zone.strip_prefix('-').map(|r| (-1, r)))
    {
        let (sign, digits) = sign;
        let digits: String = digits.chars().filter(|&c| c != ':').collect();
        if !(1..=4).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (h, m) = if digits.len() <= 2 {
            (digits.as_str(), "0")
        } else {
            digits.split_at(digits.len() - 2)
        };
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        return (h <= 15 && m < 60).then_some(sign * (h * 3600 + m * 60));
    }
    use chrono::{Offset, TimeZone};
    let tz: arrow::array::timezone::Tz = zone.parse().ok()?;
    let local = tz.from_local_datetime(&at).earliest()?;
    Some(i64::from(local.offset().fix().local_minus_utc()))
}

/// `pg_text(x)`: a timestamp or float as PostgreSQL's text; what casts of
/// those types to text become (see `casts::TextCasts`).
pub fn text_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgText {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgText {
    signature: Signature,
}

impl ScalarUDFImpl for PgText {
    fn name(&self) -> &str {
        "pg_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        one_array(args, |array| Ok(output(array)))
    }
}

/// `pg_timestamp_in(text)` / `pg_timestamptz_in(text)`: text read as
/// PostgreSQL reads a timestamp (`parse_timestamp`), in microseconds; what
/// casts from text to a timestamp become.
pub fn timestamp_in_udf(with_zone: bool) -> ScalarUDF {
    ScalarUDF::new_from_impl(TimestampIn {
        with_zone,
        signature: Signature::string(1, Volatility::Immutable),
    })
}

/// The type `timestamp_in_udf` returns.
/// The column type's own Arrow type, so that what COPY and INSERT read is
/// stored as it is.
pub fn timestamp_in_type(with_zone: bool) -> DataType {
    match with_zone {
        true => ColumnType::TimestampTz.to_arrow(),
        false => ColumnType::Timestamp.to_arrow(),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampIn {
    with_zone: bool,
    signature: Signature,
}

impl ScalarUDFImpl for TimestampIn {
    fn name(&self) -> &str {
        if self.with_zone {
            "pg_timestamptz_in"
        } else {
            "pg_timestamp_in"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(timestamp_in_type(self.with_zone))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let with_zone = self.with_zone;
        one_array(args, |array| {
            let text = arrow::compute::cast(array, &DataType::Utf8)?;
            let parsed = timestamps(text.as_string::<i32>(), with_zone, |_, e| e)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok(Arc::new(parsed) as ArrayRef)
        })
    }
}

/// `strings` read by `parse_timestamp` into `timestamp_in_type(with_zone)`;
/// the first value that does not read fails, its error passed through
/// `locate` with its index.
pub fn timestamps(
    strings: &StringArray,
    with_zone: bool,
    locate: impl Fn(usize, Error) -> Error,
) -> Result<TimestampMicrosecondArray, Error> {
    let values = strings
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.map(|t| parse_timestamp(t, with_zone).map_err(|e| locate(i, e)))
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TimestampMicrosecondArray::from(values).with_data_type(timestamp_in_type(with_zone)))
}

/// Applies `f` to a one-argument function's argument, keeping a scalar a
/// scalar (so constant folding sees a constant).
fn one_array(
    args: ScalarFunctionArgs,
    f: impl Fn(&ArrayRef) -> DFResult<ArrayRef>,
) -> DFResult<ColumnarValue> {
    let [arg] = <[ColumnarValue; 1]>::try_from(args.args)
        .map_err(|_| DataFusionError::Plan("expected one argument".into()))?;
    match arg {
        ColumnarValue::Array(array) => Ok(ColumnarValue::Array(f(&array)?)),
        ColumnarValue::Scalar(scalar) => {
            let out = f(&scalar.to_array()?)?;
            Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::try_from_array(&out, 0)?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_postgres() {
        // Expected values read off PostgreSQL 15.
        assert_eq!(float8(1.0), "1");
        assert_eq!(float8(1e20), "1e+20");
        assert_eq!(float8(1e15), "1e+15");
        assert_eq!(float8(1e14), "100000000000000");
        assert_eq!(float8(0.0001), "0.0001");
        assert_eq!(float8(0.00001), "1e-05");
        assert_eq!(float8(f64::INFINITY), "Infinity");
        assert_eq!(float4(f32::NEG_INFINITY), "-Infinity");
        assert_eq!(float8(f64::NAN), "NaN");
        assert_eq!(float4(1e6), "1e+06");
        assert_eq!(float4(100000.0), "100000");
        assert_eq!(float4(0.1), "0.1");
        assert_eq!(float8(-0.0), "-0");
        assert_eq!(float8(1.5e-7), "1.5e-07");
        assert_eq!(float8(123456789012345678.0), "1.2345678901234568e+17");
        assert_eq!(float8(1.25), "1.25");
        assert_eq!(float8(-12.5), "-12.5");
        assert_eq!(float8(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn timestamps_print_like_postgres() {
        let base = 1_704_164_645_000_000; // 2024-01-02 03:04:05
        assert_eq!(timestamp(base, false), "2024-01-02 03:04:05");
        assert_eq!(timestamp(base + 500_000, false), "2024-01-02 03:04:05.5");
        assert_eq!(
            timestamp(base + 123_456, false),
            "2024-01-02 03:04:05.123456"
        );
        assert_eq!(timestamp(-1_000_000, false), "1969-12-31 23:59:59");
    }

    #[test]
    fn timestamptz_and_bc_print_like_postgres() {
        let base = 1_704_164_645_000_000; // 2024-01-02 03:04:05
        assert_eq!(timestamp(base, true), "2024-01-02 03:04:05+00");
        assert_eq!(timestamp(base + 250_000, true), "2024-01-02 03:04:05.25+00");
        // 0001-01-01 00:00:00 minus a day and a half second: 1 BC.
        let bc = -62_135_596_800_000_000 - 86_400_000_000 - 500_000;
        assert_eq!(timestamp(bc, false), "0001-12-30 23:59:59.5 BC");
        assert_eq!(timestamp(bc, true), "0001-12-30 23:59:59.5+00 BC");
    }

    #[test]
    fn timestamps_read_like_postgres() {
        let at = |t: &str| parse_timestamp(t, false).map(|m| timestamp(m, false));
        let tz = |t: &str| parse_timestamp(t, true).map(|m| timestamp(m, true));
        let ok = [
            ("2024-01-01 12:00", "2024-01-01 12:00:00"),
            (" 2024-01-01T9:30 ", "2024-01-01 09:30:00"),
            ("2024-02-29", "2024-02-29 00:00:00"),
            ("2024-01-01 00:00:00.1234567", "2024-01-01 00:00:00.123457"),
            ("2024-01-01 00:00:00.5", "2024-01-01 00:00:00.5"),
            ("2024-01-01 12:00+02", "2024-01-01 12:00:00"),
            ("2024-01-01 12:00:00 Europe/Paris", "2024-01-01 12:00:00"),
            ("2024-12-31 24:00:00", "2025-01-01 00:00:00"),
            ("2024-12-31 23:59:60", "2025-01-01 00:00:00"),
            ("epoch", "1970-01-01 00:00:00"),
            ("0001-01-01 00:00:00", "0001-01-01 00:00:00"),
            ("10000-01-01", "10000-01-01 00:00:00"),
        ];
        for (text, want) in ok {
            assert_eq!(at(text).unwrap(), want, "{text:?}");
        }
        let zoned = [
            ("2024-01-01 12:00+02", "2024-01-01 10:00:00+00"),
            ("2024-01-01 12:00:00-03:30", "2024-01-01 15:30:00+00"),
            ("2024-01-01T12:00:00Z", "2024-01-01 12:00:00+00"),
            ("2024-01-01 12:00 UTC", "2024-01-01 12:00:00+00"),
            ("2024-07-01 12:00:00 Europe/Paris", "2024-07-01 10:00:00+00"),
            ("2024-01-01 12:00", "2024-01-01 12:00:00+00"),
        ];
        for (text, want) in zoned {
            assert_eq!(tz(text).unwrap(), want, "{text:?}");
        }
        for text in [
            "2024-01-01 25:00:00",
            "2024-02-30",
            "2024-13-01",
            "2024-01-01 12:60",
            "2024-01-01 24:00:01",
        ] {
            assert_eq!(at(text).unwrap_err().sqlstate(), "22008", "{text:?}");
        }
        for text in [
            "",
            "noon",
            "2024-01-01 12",
            "2024-1-1x",
            "2024-01-01 12:00 Nowhere/Else",
            "24-01-01",
            "2024-01-01 12:00:00.",
        ] {
            assert_eq!(at(text).unwrap_err().sqlstate(), "22007", "{text:?}");
        }
        assert_eq!(
            at("2024-01-01 25:00:00").unwrap_err().to_string(),
            "date/time field value out of range: \"2024-01-01 25:00:00\""
        );
    }

    #[test]
    fn times_and_intervals_print_like_postgres() {
        assert_eq!(time(8 * 3_600_000_000), "08:00:00");
        assert_eq!(time(12 * 3_600_000_000 + 1_500_000), "12:00:01.5");
        let hour = 3_600_000_000;
        assert_eq!(interval(0, 1, 2 * hour), "1 day 02:00:00");
        assert_eq!(interval(14, 3, 0), "1 year 2 mons 3 days");
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(0, 0, 1_500_000), "00:00:01.5");
        assert_eq!(interval(0, -1, 2 * hour), "-1 days +02:00:00");
        assert_eq!(interval(0, 1, -hour), "1 day -01:00:00");
        assert_eq!(interval(0, 0, -36 * hour), "-36:00:00");
        assert_eq!(interval(-1, 0, 0), "-1 mons");
        // timestamp - timestamp, justified as PostgreSQL's timestamp_mi does.
        let d = 36 * hour;
        assert_eq!(
            interval(0, d / 86_400_000_000, d % 86_400_000_000),
            "1 day 12:00:00"
        );
        let d = -(25 * hour + 123_500_000);
        assert_eq!(
            interval(0, d / 86_400_000_000, d % 86_400_000_000),
            "-1 days -01:02:03.5"
        );
    }
}
