//! PostgreSQL's text output for the types where pgwire's differs: timestamps
//! (PostgreSQL drops a zero fraction and trailing zeros: `03:04:05`,
//! `03:04:05.5`) and floats (`1`, `1e+20`, `Infinity`, not `1.0`, `1e20`,
//! `inf`). Text-format columns of these types are rendered here, before
//! arrow-pg encodes the batch; binary-format columns are untouched.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use pgwire::api::results::{FieldFormat, FieldInfo};

/// Renders the text-format columns whose PostgreSQL text differs from pgwire's.
pub fn render(batch: RecordBatch, fields: &[FieldInfo]) -> RecordBatch {
    let needs = batch
        .columns()
        .iter()
        .zip(fields)
        .any(|(c, f)| f.format() == FieldFormat::Text && rendered_here(c.data_type()));
    if !needs {
        return batch;
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(fields)
        .map(|(c, f)| {
            if f.format() == FieldFormat::Text && rendered_here(c.data_type()) {
                render_column(c)
            } else {
                c.clone()
            }
        })
        .collect();
    // The batch's own schema is not used by the encoder (fields are), so a
    // schema rebuilt from the arrays is enough.
    RecordBatch::try_from_iter(
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .zip(columns),
    )
    .unwrap_or(batch)
}

fn rendered_here(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(_, None) | DataType::Float32 | DataType::Float64
    )
}

fn render_column(array: &ArrayRef) -> ArrayRef {
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
        DataType::Timestamp(unit, None) => {
            let micros: Vec<Option<i64>> = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .iter()
                    .map(|v| v.map(|s| s * 1_000_000))
                    .collect(),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .map(|v| v.map(|s| s * 1_000))
                    .collect(),
                TimeUnit::Microsecond => array
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .collect(),
                TimeUnit::Nanosecond => array
                    .as_primitive::<TimestampNanosecondType>()
                    .iter()
                    .map(|v| v.map(|s| s.div_euclid(1_000)))
                    .collect(),
            };
            micros.into_iter().map(|v| v.map(timestamp)).collect()
        }
        _ => return array.clone(),
    };
    Arc::new(strings)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` with trailing zeros of the fraction dropped.
pub fn timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let Some(dt) = chrono::DateTime::from_timestamp(secs, 0) else {
        return micros.to_string();
    };
    let naive = dt.naive_utc();
    let year = chrono::Datelike::year(&naive);
    let mut s = if year <= 0 {
        // PostgreSQL writes years before 1 AD as "YYYY-MM-DD ... BC" with 1 BC = year 0.
        format!("{:04}-{} BC", 1 - year, naive.format("%m-%d %H:%M:%S"))
    } else {
        naive.format("%Y-%m-%d %H:%M:%S").to_string()
    };
    if frac != 0 {
        let digits = format!("{frac:06}");
        let trimmed = digits.trim_end_matches('0');
        let at = if year <= 0 { s.len() - 3 } else { s.len() };
        s.insert_str(at, &format!(".{trimmed}"));
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
        assert_eq!(timestamp(base), "2024-01-02 03:04:05");
        assert_eq!(timestamp(base + 500_000), "2024-01-02 03:04:05.5");
        assert_eq!(timestamp(base + 123_456), "2024-01-02 03:04:05.123456");
        assert_eq!(timestamp(-1_000_000), "1969-12-31 23:59:59");
    }
}
