//! PostgreSQL functions DataFusion lacks, or has with other answers:
//! `format`, `quote_ident`, `quote_literal`, `quote_nullable`, `age`,
//! `justify_hours`, `justify_days`, `justify_interval`, `make_timestamp`,
//! `width_bucket`, `scale` and `isfinite`. Each follows PostgreSQL's
//! definition (its source, `varlena.c`, `timestamp.c`, `numeric.c`), errors
//! and SQLSTATEs included.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::pg_text;
use crate::error::{Error, ErrorKind};

pub fn install(ctx: &SessionContext) {
    let text = || DataType::Utf8;
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, None);
    let tstz = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let interval = || DataType::Interval(IntervalUnit::MonthDayNano);
    let exact = |types: Vec<Vec<DataType>>| {
        Signature::one_of(
            types.into_iter().map(TypeSignature::Exact).collect(),
            Volatility::Immutable,
        )
    };
    let casts_to = || Signature::user_defined(Volatility::Immutable);
    let functions = [
        PgFunction::new(
            "format",
            Signature::variadic_any(Volatility::Stable),
            text(),
            format,
        ),
        PgFunction::new("quote_ident", exact(vec![vec![text()]]), text(), |a| {
            strings(a, |s| s.map(quote_ident))
        }),
        PgFunction::new("quote_literal", exact(vec![vec![text()]]), text(), |a| {
            strings(a, |s| s.map(quote_literal))
        }),
        PgFunction::new("quote_nullable", exact(vec![vec![text()]]), text(), |a| {
            strings(a, |s| {
                Some(s.map(quote_literal).unwrap_or_else(|| "NULL".into()))
            })
        }),
        PgFunction::new(
            "age",
            // Stable, not immutable: age(x) counts from today.
            Signature::one_of(
                [
                    vec![ts(), ts()],
                    vec![tstz(), tstz()],
                    vec![ts()],
                    vec![tstz()],
                ]
                .into_iter()
                .map(TypeSignature::Exact)
                .collect(),
                Volatility::Stable,
            ),
            interval(),
            age,
        ),
        PgFunction::new(
            "justify_hours",
            exact(vec![vec![interval()]]),
            interval(),
            |a| intervals(a, justify_hours),
        ),
        PgFunction::new(
            "justify_days",
            exact(vec![vec![interval()]]),
            interval(),
            |a| intervals(a, justify_days),
        ),
        PgFunction::new(
            "justify_interval",
            exact(vec![vec![interval()]]),
            interval(),
            |a| intervals(a, justify_interval),
        ),
        PgFunction::new("make_timestamp", casts_to(), ts(), make_timestamp).with_casts(vec![
            DataType::Int32,
            DataType::Int32,
            DataType::Int32,
            DataType::Int32,
            DataType::Int32,
            DataType::Float64,
        ]),
        PgFunction::new("width_bucket", casts_to(), DataType::Int32, width_bucket).with_casts(
            vec![
                DataType::Float64,
                DataType::Float64,
                DataType::Float64,
                DataType::Int32,
            ],
        ),
        PgFunction::new(
            "scale",
            Signature::any(1, Volatility::Immutable),
            DataType::Int32,
            scale,
        ),
        PgFunction::new(
            "isfinite",
            exact(vec![
                vec![DataType::Date32],
                vec![ts()],
                vec![tstz()],
                vec![interval()],
            ]),
            DataType::Boolean,
            isfinite,
        ),
    ];
    for f in functions {
        ctx.register_udf(ScalarUDF::new_from_impl(f));
    }
}

type Body = fn(&[ArrayRef]) -> Result<ArrayRef>;

/// A function over whole arrays (scalars are expanded to one row).
struct PgFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: Body,
    /// The types the arguments are cast to (a user-defined signature):
    /// any number converts, as PostgreSQL's implicit casts do.
    casts: Vec<DataType>,
}

impl PgFunction {
    fn new(name: &'static str, signature: Signature, returns: DataType, body: Body) -> Self {
        PgFunction {
            name,
            signature,
            returns,
            body,
            casts: Vec::new(),
        }
    }

    fn with_casts(self, casts: Vec<DataType>) -> Self {
        PgFunction { casts, ..self }
    }
}

impl std::fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

// One function per name: the name is its identity.
impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for PgFunction {}
impl std::hash::Hash for PgFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != self.casts.len() {
            return Err(fail(
                ErrorKind::UndefinedFunction,
                format!(
                    "function {}({}) does not exist",
                    self.name,
                    arg_types
                        .iter()
                        .map(super::pg::type_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(self.casts.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // Never empty: DataFusion refuses these functions without arguments.
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.body)(&arrays)?;
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn fail(kind: ErrorKind, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(Error::new(kind, message.into())))
}

fn strings(args: &[ArrayRef], f: impl Fn(Option<&str>) -> Option<String>) -> Result<ArrayRef> {
    let out: StringArray = args[0].as_string::<i32>().iter().map(f).collect();
    Ok(Arc::new(out))
}

/// Words PostgreSQL's `quote_ident` quotes although they are lower case:
/// its reserved keywords (and those that cannot be function or type names).
const RESERVED: &str = "\
   all analyse analyze and any array as asc asymmetric authorization between \
   bigint binary bit boolean both case cast char character check coalesce \
   collate collation column concurrently constraint create cross \
   current_catalog current_date current_role current_schema current_time \
   current_timestamp current_user dec decimal default deferrable desc distinct \
   do else end except exists extract false fetch float for foreign freeze from \
   full grant greatest group grouping having ilike in initially inner inout int \
   integer intersect interval into is isnull join json lateral leading least \
   left like limit localtime localtimestamp national natural nchar none \
   normalize not notnull null nullif numeric offset on only or order out outer \
   overlaps overlay placing position precision primary real references \
   returning right row select session_user setof similar smallint some \
   substring symmetric system_user table tablesample then time timestamp to \
   trailing treat trim true union unique user using values varchar variadic \
   verbose when where window with xmlattributes xmlconcat xmlelement xmlexists \
   xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable";

/// An identifier as PostgreSQL's `quote_ident` writes it: quoted unless it
/// is lower case letters, digits and underscores not starting with a digit,
/// and not a reserved word.
pub fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_lowercase() || c == '_' || (i > 0 && c.is_ascii_digit()))
        && !RESERVED.split_whitespace().any(|word| word == name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A string literal as `quote_literal` writes it: quotes doubled, and a
/// string with backslashes written as `E'...'` with them doubled.
fn quote_literal(s: &str) -> String {
    let body = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// Each argument's values in PostgreSQL's text (`t` for true, as its output
/// function writes a boolean).
fn texts(array: &ArrayRef) -> Result<StringArray> {
    if pg_text::renders(array.data_type()) {
        return Ok(pg_text::output(array).as_string::<i32>().clone());
    }
    if let Some(b) = array.as_any().downcast_ref::<BooleanArray>() {
        return Ok(b
            .iter()
            .map(|v| v.map(|v| if v { "t" } else { "f" }))
            .collect());
    }
    let cast = arrow::compute::cast(array, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

/// `format(formatstr, args...)`: `%s`, `%I`, `%L` and `%%`, with argument
/// positions (`%2$s`), widths (`%5s`, `%*s`) and the `-` flag.
fn format(args: &[ArrayRef]) -> Result<ArrayRef> {
    let template = texts(&args[0])?;
    let values: Vec<StringArray> = args[1..].iter().map(texts).collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(template.len());
    for row in 0..template.len() {
        if template.is_null(row) {
            out.push(None);
            continue;
        }
        let arg = |i: usize| -> Option<&str> {
            let a = &values[i];
            (!a.is_null(row)).then(|| a.value(row))
        };
        out.push(Some(format_row(template.value(row), values.len(), arg)?));
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn format_row<'a>(
    template: &str,
    count: usize,
    arg: impl Fn(usize) -> Option<&'a str>,
) -> Result<String> {
    let bad = |m: &str| fail(ErrorKind::InvalidParameterValue, m.to_string());
    let too_few = || bad("too few arguments for format()");
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    let mut next = 0usize;
    // A number at the cursor, if any.
    let number = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Option<usize> {
        let mut n: Option<usize> = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            n = Some(n.unwrap_or(0) * 10 + d as usize);
            chars.next();
        }
        n
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        // %[position$][flags][width]type
        let mut position = None;
        let mut left = false;
        let mut width: Option<i64> = None;
        let mut save = chars.clone();
        if let Some(n) = number(&mut save)
            && save.peek() == Some(&'$')
        {
            save.next();
            if n == 0 {
                return Err(bad(
                    "format specifies argument 0, but arguments are numbered from 1",
                ));
            }
            position = Some(n - 1);
            chars = save;
        }
        if chars.peek() == Some(&'-') {
            left = true;
            chars.next();
        }
        if chars.peek() == Some(&'*') {
            chars.next();
            let mut at = next;
            let mut s2 = chars.clone();
            if let Some(n) = number(&mut s2)
                && s2.peek() == Some(&'$')
            {
                s2.next();
                at = n.saturating_sub(1);
                chars = s2;
            } else {
                next += 1;
            }
            if at >= count {
                return Err(too_few());
            }
            let w: i64 = match arg(at) {
                Some(t) => t
                    .trim()
                    .parse()
                    .map_err(|_| bad("width argument must be an integer"))?,
                None => 0,
            };
            if w < 0 {
                left = true;
            }
            width = Some(w.abs());
        } else if let Some(n) = number(&mut chars) {
            width = Some(n as i64);
        }
        let Some(kind) = chars.next() else {
            return Err(bad("unterminated format() type specifier"));
        };
        if !matches!(kind, 's' | 'I' | 'L') {
            return Err(fail(
                ErrorKind::InvalidParameterValue,
                format!("unrecognized format() type specifier \"{kind}\""),
            ));
        }
        let at = match position {
            Some(p) => {
                next = p + 1;
                p
            }
            None => {
                next += 1;
                next - 1
            }
        };
        if at >= count {
            return Err(too_few());
        }
        let text = match (kind, arg(at)) {
            ('s', v) => v.unwrap_or("").to_string(),
            ('I', Some(v)) => quote_ident(v),
            ('I', None) => {
                return Err(fail(
                    ErrorKind::NullValueNotAllowed,
                    "null values cannot be formatted as an SQL identifier",
                ));
            }
            (_, Some(v)) => quote_literal(v),
            (_, None) => "NULL".to_string(),
        };
        let pad = width
            .map(|w| (w as usize).saturating_sub(text.chars().count()))
            .unwrap_or(0);
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

fn intervals(
    args: &[ArrayRef],
    f: fn(IntervalMonthDayNano) -> IntervalMonthDayNano,
) -> Result<ArrayRef> {
    let input = args[0].as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>();
    Ok(Arc::new(
        input.unary::<_, arrow::datatypes::IntervalMonthDayNanoType>(f),
    ))
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Gives `smaller` the sign of `larger` (PostgreSQL's justify functions
/// never answer `1 day -01:00:00`), moving one `unit` between them.
fn same_sign(larger: &mut i64, smaller: &mut i64, unit: i64) {
    if *larger > 0 && *smaller < 0 {
        *smaller += unit;
        *larger -= 1;
    } else if *larger < 0 && *smaller > 0 {
        *smaller -= unit;
        *larger += 1;
    }
}

/// PostgreSQL's `justify_hours`: whole days out of the time part.
fn justify_hours(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let mut days = i64::from(v.days) + v.nanoseconds / NANOS_PER_DAY;
    let mut time = v.nanoseconds % NANOS_PER_DAY;
    same_sign(&mut days, &mut time, NANOS_PER_DAY);
    IntervalMonthDayNano::new(v.months, days as i32, time)
}

/// PostgreSQL's `justify_days`: whole 30-day months out of the days.
fn justify_days(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let mut months = i64::from(v.months) + i64::from(v.days / 30);
    let mut days = i64::from(v.days % 30);
    same_sign(&mut months, &mut days, 30);
    IntervalMonthDayNano::new(months as i32, days as i32, v.nanoseconds)
}

/// PostgreSQL's `justify_interval`: both, with one sign throughout.
fn justify_interval(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let mut months = i64::from(v.months) + i64::from(v.days / 30);
    let mut days = i64::from(v.days % 30);
    let mut time = v.nanoseconds;
    days += time / NANOS_PER_DAY;
    time %= NANOS_PER_DAY;
    months += days / 30;
    days %= 30;
    // Months and the rest (days, then time) take one sign.
    let rest = if days != 0 { days } else { time };
    if months > 0 && rest < 0 {
        days += 30;
        months -= 1;
    } else if months < 0 && rest > 0 {
        days -= 30;
        months += 1;
    }
    same_sign(&mut days, &mut time, NANOS_PER_DAY);
    IntervalMonthDayNano::new(months as i32, days as i32, time)
}

fn micros_of(array: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let cast = arrow::compute::cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    Ok(cast
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
        .iter()
        .collect())
}

/// `age(a, b)`: the difference as years, months and days, field by field
/// with borrows (PostgreSQL's `timestamp_age`); `age(a)` is from today's
/// midnight.
fn age(args: &[ArrayRef]) -> Result<ArrayRef> {
    let left = micros_of(&args[0])?;
    let pairs: Vec<(Option<i64>, Option<i64>)> = if args.len() == 2 {
        left.into_iter().zip(micros_of(&args[1])?).collect()
    } else {
        let today = chrono::Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros());
        left.into_iter().map(|b| (today, b)).collect()
    };
    let out: arrow::array::IntervalMonthDayNanoArray = pairs
        .into_iter()
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => timestamp_age(a, b),
            _ => None,
        })
        .collect();
    Ok(Arc::new(out))
}

fn timestamp_age(a: i64, b: i64) -> Option<IntervalMonthDayNano> {
    let t1 = chrono::DateTime::from_timestamp_micros(a)?.naive_utc();
    let t2 = chrono::DateTime::from_timestamp_micros(b)?.naive_utc();
    let fields = |t: &NaiveDateTime| {
        [
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
            i64::from(t.minute()),
            i64::from(t.second()),
            i64::from(t.nanosecond() / 1000),
        ]
    };
    let (f1, f2) = (fields(&t1), fields(&t2));
    let sign = if a < b { -1 } else { 1 };
    let [
        mut year,
        mut mon,
        mut mday,
        mut hour,
        mut min,
        mut sec,
        mut usec,
    ] = std::array::from_fn(|i| sign * (f1[i] - f2[i]));
    borrow(&mut usec, &mut sec, 1_000_000);
    borrow(&mut sec, &mut min, 60);
    borrow(&mut min, &mut hour, 60);
    borrow(&mut hour, &mut mday, 24);
    // A borrowed month is as long as the earlier timestamp's month.
    let (year_of, month_of) = if a < b {
        (f1[0], f1[1])
    } else {
        (f2[0], f2[1])
    };
    while mday < 0 {
        mday += days_in_month(year_of, month_of);
        mon -= 1;
    }
    borrow(&mut mon, &mut year, 12);
    let months = sign * (year * 12 + mon);
    let days = sign * mday;
    let nanos = sign * (((hour * 60 + min) * 60 + sec) * 1_000_000 + usec) * 1000;
    Some(IntervalMonthDayNano::new(
        i32::try_from(months).ok()?,
        i32::try_from(days).ok()?,
        nanos,
    ))
}

/// Makes a negative field positive by borrowing from the next larger one.
fn borrow(field: &mut i64, larger: &mut i64, base: i64) {
    while *field < 0 {
        *field += base;
        *larger -= 1;
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let y = i32::try_from(year).unwrap_or(2000);
    let first = NaiveDate::from_ymd_opt(y, month as u32, 1);
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, month as u32 + 1, 1)
    };
    match (first, next) {
        (Some(a), Some(b)) => (b - a).num_days(),
        _ => 30,
    }
}

/// `make_timestamp(year, month, day, hour, min, sec)`.
fn make_timestamp(args: &[ArrayRef]) -> Result<ArrayRef> {
    let ints: Vec<_> = args[..5]
        .iter()
        .map(|a| a.as_primitive::<arrow::datatypes::Int32Type>())
        .collect();
    let secs = args[5].as_primitive::<arrow::datatypes::Float64Type>();
    let mut out = Vec::with_capacity(secs.len());
    for row in 0..secs.len() {
        if ints.iter().any(|a| a.is_null(row)) || secs.is_null(row) {
            out.push(None);
            continue;
        }
        let [y, mo, d, h, mi] = std::array::from_fn(|i| ints[i].value(row));
        let s = secs.value(row);
        let date = NaiveDate::from_ymd_opt(y, mo as u32, d as u32)
            .filter(|_| y != 0 && mo > 0 && d > 0)
            .ok_or_else(|| {
                fail(
                    ErrorKind::DatetimeFieldOverflow,
                    format!("date field value out of range: {y}-{mo:02}-{d:02}"),
                )
            })?;
        let out_of_range = || {
            fail(
                ErrorKind::DatetimeFieldOverflow,
                format!(
                    "time field value out of range: {h}:{mi:02}:{}",
                    pg_text::float8(s)
                ),
            )
        };
        if !(0..=24).contains(&h) || !(0..60).contains(&mi) || !(0.0..=60.0).contains(&s) {
            return Err(out_of_range());
        }
        let micros = (s * 1e6).round() as i64;
        let time = i64::from(h) * 3_600_000_000 + i64::from(mi) * 60_000_000 + micros;
        if time > 86_400_000_000 {
            return Err(out_of_range());
        }
        let midnight = date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros());
        out.push(midnight.map(|m| m + time));
    }
    Ok(Arc::new(arrow::array::TimestampMicrosecondArray::from(out)))
}

/// `width_bucket(operand, low, high, count)`: which of `count` equal
/// buckets between `low` and `high` holds `operand` (0 below, count + 1
/// above).
fn width_bucket(args: &[ArrayRef]) -> Result<ArrayRef> {
    let [x, low, high] =
        std::array::from_fn(|i| args[i].as_primitive::<arrow::datatypes::Float64Type>());
    let count = args[3].as_primitive::<arrow::datatypes::Int32Type>();
    let bad = |m: &str| fail(ErrorKind::InvalidArgumentForWidthBucket, m.to_string());
    let mut out = Vec::with_capacity(x.len());
    for row in 0..x.len() {
        if x.is_null(row) || low.is_null(row) || high.is_null(row) || count.is_null(row) {
            out.push(None);
            continue;
        }
        let (v, lo, hi, n) = (
            x.value(row),
            low.value(row),
            high.value(row),
            count.value(row),
        );
        if n <= 0 {
            return Err(bad("count must be greater than zero"));
        }
        if lo == hi {
            return Err(bad("lower bound cannot equal upper bound"));
        }
        if v.is_nan() || lo.is_nan() || hi.is_nan() {
            return Err(bad("operand, lower bound, and upper bound cannot be NaN"));
        }
        if !lo.is_finite() || !hi.is_finite() {
            return Err(bad("lower and upper bounds must be finite"));
        }
        let bucket = if lo < hi {
            if v < lo {
                0
            } else if v >= hi {
                i64::from(n) + 1
            } else {
                ((v - lo) / (hi - lo) * f64::from(n)).floor() as i64 + 1
            }
        } else if v > lo {
            0
        } else if v <= hi {
            i64::from(n) + 1
        } else {
            ((lo - v) / (lo - hi) * f64::from(n)).floor() as i64 + 1
        };
        let bucket = i32::try_from(bucket)
            .map_err(|_| fail(ErrorKind::NumericValueOutOfRange, "integer out of range"))?;
        out.push(Some(bucket));
    }
    Ok(Arc::new(arrow::array::Int32Array::from(out)))
}

/// `scale(numeric)`: the digits after the point. A numeric column here has
/// one scale, its type's.
fn scale(args: &[ArrayRef]) -> Result<ArrayRef> {
    let scale = match args[0].data_type() {
        DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => i32::from(*s).max(0),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => 0,
        DataType::Null => 0,
        other => {
            return Err(fail(
                ErrorKind::UndefinedFunction,
                format!(
                    "function scale({}) does not exist",
                    super::pg::type_name(other)
                ),
            ));
        }
    };
    let out: arrow::array::Int32Array = (0..args[0].len())
        .map(|i| (!args[0].is_null(i)).then_some(scale))
        .collect();
    Ok(Arc::new(out))
}

/// `isfinite(x)`: fusegate stores no infinite dates, timestamps or
/// intervals, so every value is finite.
fn isfinite(args: &[ArrayRef]) -> Result<ArrayRef> {
    let out: BooleanArray = (0..args[0].len())
        .map(|i| (!args[0].is_null(i)).then_some(true))
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    fn age_text(a: &str, b: &str) -> String {
        let v = timestamp_age(ts(a), ts(b)).unwrap();
        pg_text::interval(i64::from(v.months), i64::from(v.days), v.nanoseconds / 1000)
    }

    #[test]
    fn age_borrows_as_postgresql_does() {
        // Each checked against PostgreSQL 15.
        assert_eq!(
            age_text("2024-03-01 00:00:00", "2024-01-31 00:00:00"),
            "1 mon 1 day"
        );
        assert_eq!(
            age_text("2024-02-29 00:00:00", "2023-02-28 00:00:00"),
            "1 year 1 day"
        );
        assert_eq!(
            age_text("2024-01-01 00:00:00", "2024-01-01 00:00:01"),
            "-00:00:01"
        );
        assert_eq!(
            age_text("2001-04-10 00:00:00", "1957-06-13 00:00:00"),
            "43 years 9 mons 27 days"
        );
    }

    #[test]
    fn format_follows_postgresql() {
        let args = ["a", "Foo", "x'y"];
        let arg = |i: usize| args.get(i).copied();
        assert_eq!(format_row("%s-%I-%L", 3, arg).unwrap(), "a-\"Foo\"-'x''y'");
        assert_eq!(format_row("[%5s][%-5s]", 3, arg).unwrap(), "[    a][Foo  ]");
        assert_eq!(format_row("%2$s %1$s %s", 3, arg).unwrap(), "Foo a Foo");
        assert_eq!(format_row("100%%", 0, arg).unwrap(), "100%");
        assert!(format_row("%s %s %s %s", 3, arg).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("foo"), "foo");
        assert_eq!(quote_ident("Foo"), "\"Foo\"");
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
    }

    #[test]
    fn justify() {
        let day = NANOS_PER_DAY;
        assert_eq!(
            justify_hours(IntervalMonthDayNano::new(0, 0, 27 * day / 24)),
            IntervalMonthDayNano::new(0, 1, 3 * day / 24)
        );
        assert_eq!(
            justify_days(IntervalMonthDayNano::new(0, 35, 0)),
            IntervalMonthDayNano::new(1, 5, 0)
        );
        // 1 month -1 hour: 29 days 23:00:00
        assert_eq!(
            justify_interval(IntervalMonthDayNano::new(1, 0, -day / 24)),
            IntervalMonthDayNano::new(0, 29, 23 * day / 24)
        );
    }
}
