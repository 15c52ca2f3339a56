//! Arrow batches → DataRow messages. The column types results are mostly
//! made of (integers, booleans, numerics, dates, strings, and floats in binary)
//! are written straight from their arrays into the row; any other column goes
//! through arrow-pg, value by value, into the same row. Streaming a large
//! result spent most of its time in the per-value path (a `rust_decimal` and a
//! `String` per numeric, a chrono format string parsed per date).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
    StringViewArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
};
use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, Kind, ToSql};

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;

/// The DataRows of `batch`, encoded as they are taken.
pub fn encode_batch(
    fields: Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
) -> impl Iterator<Item = PgWireResult<DataRow>> + Send + Sync {
    let columns: Vec<Column> = batch
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(array, field)| Column::new(array, field))
        .collect();
    let mut buf = BytesMut::new();
    (0..batch.num_rows()).map(move |row| {
        for (i, column) in columns.iter().enumerate() {
            column.encode(row, &mut buf, &batch, &fields[i], i)?;
        }
        Ok(DataRow::new(buf.split(), columns.len() as i16))
    })
}

/// One column of a batch, downcast once for the fast paths.
enum Column {
    Int16(Int16Array, FieldFormat),
    Int32(Int32Array, FieldFormat),
    Int64(Int64Array, FieldFormat),
    Bool(BooleanArray, FieldFormat),
    Decimal(Decimal128Array, u8, FieldFormat),
    Date(Date32Array, FieldFormat),
    /// Binary only: text floats are rendered to strings before (`pgtext`).
    Float32(Float32Array),
    Float64(Float64Array),
    /// Strings whose encoding, text or binary, is their bytes.
    Utf8(StringArray),
    LargeUtf8(LargeStringArray),
    Utf8View(StringViewArray),
    Other(ArrayRef),
}

impl Column {
    fn new(array: &ArrayRef, field: &FieldInfo) -> Column {
        let format = field.format();
        let ty = field.datatype();
        let binary = format == FieldFormat::Binary;
        let string_bytes = if binary {
            matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME)
        } else {
            !matches!(ty.kind(), Kind::Array(_))
        };
        match (array.data_type(), ty) {
            (DataType::Int16, &Type::INT2) => {
                Column::Int16(array.as_primitive::<Int16Type>().clone(), format)
            }
            (DataType::Int32, &Type::INT4) => {
                Column::Int32(array.as_primitive::<Int32Type>().clone(), format)
            }
            (DataType::Int64, &Type::INT8) => {
                Column::Int64(array.as_primitive::<Int64Type>().clone(), format)
            }
            (DataType::Boolean, &Type::BOOL) => Column::Bool(array.as_boolean().clone(), format),
            (DataType::Decimal128(_, scale), &Type::NUMERIC) if *scale >= 0 => Column::Decimal(
                array.as_primitive::<Decimal128Type>().clone(),
                *scale as u8,
                format,
            ),
            (DataType::Date32, &Type::DATE) => {
                Column::Date(array.as_primitive::<Date32Type>().clone(), format)
            }
            (DataType::Float32, &Type::FLOAT4) if binary => {
                Column::Float32(array.as_primitive::<Float32Type>().clone())
            }
            (DataType::Float64, &Type::FLOAT8) if binary => {
                Column::Float64(array.as_primitive::<Float64Type>().clone())
            }
            (DataType::Utf8, _) if string_bytes => Column::Utf8(array.as_string::<i32>().clone()),
            (DataType::LargeUtf8, _) if string_bytes => {
                Column::LargeUtf8(array.as_string::<i64>().clone())
            }
            (DataType::Utf8View, _) if string_bytes => {
                Column::Utf8View(array.as_string_view().clone())
            }
            _ => Column::Other(array.clone()),
        }
    }

    fn array(&self) -> &dyn Array {
        match self {
            Column::Int16(a, _) => a,
            Column::Int32(a, _) => a,
            Column::Int64(a, _) => a,
            Column::Bool(a, _) => a,
            Column::Decimal(a, _, _) => a,
            Column::Date(a, _) => a,
            Column::Float32(a) => a,
            Column::Float64(a) => a,
            Column::Utf8(a) => a,
            Column::LargeUtf8(a) => a,
            Column::Utf8View(a) => a,
            Column::Other(a) => a.as_ref(),
        }
    }

    /// Appends the field (length, then value) of `row` to `buf`.
    fn encode(
        &self,
        row: usize,
        buf: &mut BytesMut,
        batch: &RecordBatch,
        field: &FieldInfo,
        index: usize,
    ) -> PgWireResult<()> {
        if let Column::Other(array) = self {
            let arrow_field = batch.schema_ref().field(index);
            let mut encoder = Fallback(buf);
            return arrow_pg::encoder::encode_value(&mut encoder, array, row, arrow_field, field);
        }
        if self.array().is_null(row) {
            buf.put_i32(-1);
            return Ok(());
        }
        let at = buf.len();
        buf.put_i32(0);
        let text = |f: &FieldFormat| *f == FieldFormat::Text;
        match self {
            Column::Int16(a, f) if text(f) => integer_text(buf, a.value(row) as i64),
            Column::Int16(a, _) => buf.put_i16(a.value(row)),
            Column::Int32(a, f) if text(f) => integer_text(buf, a.value(row) as i64),
            Column::Int32(a, _) => buf.put_i32(a.value(row)),
            Column::Int64(a, f) if text(f) => integer_text(buf, a.value(row)),
            Column::Int64(a, _) => buf.put_i64(a.value(row)),
            Column::Bool(a, f) if text(f) => buf.put_u8(if a.value(row) { b't' } else { b'f' }),
            Column::Bool(a, _) => buf.put_u8(a.value(row) as u8),
            Column::Decimal(a, scale, f) if text(f) => numeric_text(buf, a.value(row), *scale),
            Column::Decimal(a, scale, _) => numeric_binary(buf, a.value(row), *scale),
            Column::Date(a, f) if text(f) => date_text(buf, a.value(row)),
            Column::Date(a, _) => buf.put_i32(a.value(row).wrapping_sub(PG_EPOCH_DAYS)),
            Column::Float32(a) => buf.put_f32(a.value(row)),
            Column::Float64(a) => buf.put_f64(a.value(row)),
            Column::Utf8(a) => buf.put_slice(a.value(row).as_bytes()),
            Column::LargeUtf8(a) => buf.put_slice(a.value(row).as_bytes()),
            Column::Utf8View(a) => buf.put_slice(a.value(row).as_bytes()),
            Column::Other(_) => {}
        }
        let len = (buf.len() - at - 4) as i32;
        buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

/// arrow-pg's per-value encoding, writing into the row being built.
struct Fallback<'a>(&'a mut BytesMut);

impl arrow_pg::encoder::Encoder for Fallback<'_> {
    type Item = ();

    fn encode_field<T>(&mut self, value: &T, field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        let buf = &mut *self.0;
        let at = buf.len();
        buf.put_i32(-1);
        let written = if field.format() == FieldFormat::Text {
            value.to_sql_text(field.datatype(), buf, field.format_options())
        } else {
            value.to_sql(field.datatype(), buf)
        }
        .map_err(PgWireError::ApiError)?;
        if let IsNull::No = written {
            let len = (buf.len() - at - 4) as i32;
            buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    fn take_row(&mut self) {}
}

fn integer_text(buf: &mut BytesMut, v: i64) {
    buf.put_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// PostgreSQL's numeric text: all `scale` fraction digits, `0.05`, `-12.50`.
fn numeric_text(buf: &mut BytesMut, v: i128, scale: u8) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(v.unsigned_abs()).as_bytes();
    let scale = scale as usize;
    if v < 0 {
        buf.put_u8(b'-');
    }
    if scale == 0 {
        buf.put_slice(digits);
    } else if digits.len() <= scale {
        buf.put_slice(b"0.");
        buf.put_bytes(b'0', scale - digits.len());
        buf.put_slice(digits);
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        buf.put_slice(int);
        buf.put_u8(b'.');
        buf.put_slice(frac);
    }
}

/// PostgreSQL's binary numeric: digit count, weight (of the first base-10000
/// digit), sign, display scale, then the base-10000 digits without leading or
/// trailing zero digits.
fn numeric_binary(buf: &mut BytesMut, v: i128, scale: u8) {
    let mut text = itoa::Buffer::new();
    let text = text.format(v.unsigned_abs()).as_bytes();
    let scale = scale as usize;
    // Decimal digits, the integer part padded to whole groups of four on the
    // left, the fraction on the right.
    let int_len = text.len().saturating_sub(scale);
    let lead = (4 - int_len % 4) % 4;
    let frac_len = scale.div_ceil(4) * 4;
    let mut dec = [0u8; 64];
    let mut n = lead;
    for &d in &text[..int_len] {
        dec[n] = d - b'0';
        n += 1;
    }
    // Fraction digits missing from `text` (a value below 10^-k) are zeros.
    n += scale - (text.len() - int_len);
    for &d in &text[int_len..] {
        dec[n] = d - b'0';
        n += 1;
    }
    let total = lead + int_len + frac_len;
    let mut groups = [0i16; 16];
    let count = total / 4;
    for (g, chunk) in groups.iter_mut().zip(dec[..total].chunks(4)) {
        *g = chunk.iter().fold(0i16, |acc, &d| acc * 10 + d as i16);
    }
    let mut weight = ((lead + int_len) / 4) as i16 - 1;
    let mut first = 0;
    while first < count && groups[first] == 0 {
        first += 1;
        weight -= 1;
    }
    let mut last = count;
    while last > first && groups[last - 1] == 0 {
        last -= 1;
    }
    let digits = &groups[first..last];
    if digits.is_empty() {
        weight = 0;
    }
    buf.put_i16(digits.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(if v < 0 { 0x4000 } else { 0 });
    buf.put_u16(scale as u16);
    for d in digits {
        buf.put_i16(*d);
    }
}

/// `YYYY-MM-DD` (DateStyle ISO), years before 1 AD as `YYYY-MM-DD BC`.
fn date_text(buf: &mut BytesMut, days: i32) {
    let (year, month, day) = civil_from_days(days as i64);
    let (year, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    padded(buf, year as u64, 4);
    buf.put_u8(b'-');
    padded(buf, month as u64, 2);
    buf.put_u8(b'-');
    padded(buf, day as u64, 2);
    if bc {
        buf.put_slice(b" BC");
    }
}

fn padded(buf: &mut BytesMut, v: u64, width: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(v).as_bytes();
    buf.put_bytes(b'0', width.saturating_sub(digits.len()));
    buf.put_slice(digits);
}

/// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (Howard Hinnant's `civil_from_days`); year 0 is 1 BC.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use tokio_postgres::types::FromSql;

    fn text_of(f: impl Fn(&mut BytesMut)) -> String {
        let mut buf = BytesMut::new();
        f(&mut buf);
        String::from_utf8(buf.to_vec()).unwrap_or_default()
    }

    #[test]
    fn numerics_print_like_postgres() {
        assert_eq!(text_of(|b| numeric_text(b, 12345, 2)), "123.45");
        assert_eq!(text_of(|b| numeric_text(b, -5, 2)), "-0.05");
        assert_eq!(text_of(|b| numeric_text(b, 0, 2)), "0.00");
        assert_eq!(text_of(|b| numeric_text(b, 1230, 2)), "12.30");
        assert_eq!(text_of(|b| numeric_text(b, -42, 0)), "-42");
        assert_eq!(
            text_of(|b| numeric_text(b, i128::MAX, 38)),
            "1.70141183460469231731687303715884105727"
        );
    }

    #[test]
    fn binary_numerics_decode_to_their_value() {
        let values: &[(i128, u8)] = &[
            (0, 0),
            (0, 2),
            (1, 0),
            (-1, 0),
            (12345, 2),
            (-5, 2),
            (10000, 0),
            (100000000, 4),
            (1, 9),
            (-123456789012345678, 6),
            (99999999999999999999999999, 10),
            (7, 28),
        ];
        for &(v, scale) in values {
            let mut buf = BytesMut::new();
            numeric_binary(&mut buf, v, scale);
            let got = Decimal::from_sql(&Type::NUMERIC, &buf).unwrap_or_default();
            let want = Decimal::from_i128_with_scale(v, scale as u32);
            assert_eq!(got, want, "{v} scale {scale}");
            assert_eq!(got.scale(), scale as u32, "{v} scale {scale}");
        }
    }

    #[test]
    fn dates_print_like_postgres() {
        // Expected values read off PostgreSQL 15.
        assert_eq!(text_of(|b| date_text(b, 0)), "1970-01-01");
        assert_eq!(text_of(|b| date_text(b, 10_957)), "2000-01-01");
        assert_eq!(text_of(|b| date_text(b, 11_016)), "2000-02-29");
        assert_eq!(text_of(|b| date_text(b, -1)), "1969-12-31");
        assert_eq!(text_of(|b| date_text(b, 2_932_896)), "9999-12-31");
        assert_eq!(text_of(|b| date_text(b, 2_932_897)), "10000-01-01");
        // '0001-01-01' and the day before it, 1 BC.
        assert_eq!(text_of(|b| date_text(b, -719_162)), "0001-01-01");
        assert_eq!(text_of(|b| date_text(b, -719_163)), "0001-12-31 BC");
        // '0044-03-15 BC'::date - '1970-01-01'::date
        assert_eq!(text_of(|b| date_text(b, -735_160)), "0044-03-15 BC");
    }
}
