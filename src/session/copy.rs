//! COPY ... FROM STDIN: PostgreSQL's text and CSV formats decoded into Arrow
//! batches as CopyData arrives, and streamed into new blocks (bounded memory,
//! back-pressure to the client). Nothing is visible until CopyDone commits;
//! a bad row fails the whole COPY, naming its line.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Decimal128Builder, RecordBatch, StringArray, StringBuilder, new_null_array,
};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::fuse::FuseTable;
use crate::fuse::meta::BlockMeta;
use crate::query::pg_text::timestamps;
use crate::sql::CopyFormat;

/// Rows per batch handed to the block writer.
const BATCH_ROWS: usize = 8192;

/// A COPY FROM STDIN in progress.
pub struct CopyIn {
    table: FuseTable,
    decoder: Decoder,
    sender: Option<mpsc::Sender<Result<RecordBatch>>>,
    writer: JoinHandle<Result<(Vec<BlockMeta>, u64)>>,
}

impl CopyIn {
    /// `columns`: for each table column, its position in the COPY data, or
    /// its value when absent from the data (text of its default, or NULL).
    pub fn start(
        table: FuseTable,
        format: CopyFormat,
        columns: Vec<Source>,
        width: usize,
    ) -> CopyIn {
        let (sender, mut receiver) = mpsc::channel::<Result<RecordBatch>>(2);
        let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        let writer_table = table.clone();
        let writer = tokio::spawn(async move {
            crate::query::write_query_blocks(&writer_table, Box::pin(stream)).await
        });
        let schema = table.meta().schema.to_arrow();
        CopyIn {
            decoder: Decoder::new(format, columns, width, schema, table.name().to_string()),
            table,
            sender: Some(sender),
            writer,
        }
    }

    pub async fn data(&mut self, bytes: &[u8]) -> Result<()> {
        let batches = match self.decoder.feed(bytes) {
            Ok(b) => b,
            Err(e) => return Err(self.fail(e).await),
        };
        for batch in batches {
            self.send(batch).await?;
        }
        Ok(())
    }

    async fn send(&mut self, batch: RecordBatch) -> Result<()> {
        let Some(sender) = &self.sender else {
            return Err(Error::internal("COPY already ended"));
        };
        if sender.send(Ok(batch)).await.is_err() {
            // The writer stopped: its error says why.
            return Err(self
                .finish_writer()
                .await
                .err()
                .unwrap_or_else(|| Error::internal("COPY writer stopped")));
        }
        Ok(())
    }

    /// Ends the data: writes what is left and commits. Returns the row count.
    pub async fn done(mut self) -> Result<u64> {
        let last = match self.decoder.finish() {
            Ok(last) => last,
            Err(e) => return Err(self.fail(e).await),
        };
        if let Some(batch) = last {
            self.send(batch).await?;
        }
        let (blocks, rows) = self.finish_writer().await?;
        crate::query::commit_query_blocks(&self.table, blocks).await?;
        Ok(rows)
    }

    /// Abandons the COPY: the blocks written so far are removed.
    pub async fn fail(&mut self, error: Error) -> Error {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Err(error.duplicate())).await;
        }
        let _ = (&mut self.writer).await;
        error
    }

    async fn finish_writer(&mut self) -> Result<(Vec<BlockMeta>, u64)> {
        self.sender.take();
        match (&mut self.writer).await {
            Ok(result) => result,
            Err(e) => Err(Error::internal(format!("COPY writer failed: {e}"))),
        }
    }
}

/// Where a table column's values come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The n-th field of each COPY line.
    Field(usize),
    /// Not in the COPY column list: this value (text) or NULL.
    Fixed(Option<String>),
}

/// One field of the record being decoded: where its text lies in the line,
/// or the text itself when quotes or escapes had to be taken out of it.
enum Field {
    Null,
    Span(usize, usize),
    Owned(String),
}

struct Decoder {
    format: CopyFormat,
    columns: Vec<Source>,
    width: usize,
    schema: SchemaRef,
    table: String,
    /// Bytes of an incomplete record.
    pending: Vec<u8>,
    /// Line number of the next record (1-based, as PostgreSQL counts).
    line: u64,
    header_pending: bool,
    ended: bool,
    /// Text of the current batch's fields, one builder per COPY column:
    /// values are appended in place, not allocated one by one.
    fields: Vec<StringBuilder>,
    /// The current record's fields; kept so that a record allocates nothing.
    record_fields: Vec<Field>,
    lines: Vec<u64>,
}

impl Decoder {
    fn new(
        format: CopyFormat,
        columns: Vec<Source>,
        width: usize,
        schema: SchemaRef,
        table: String,
    ) -> Decoder {
        Decoder {
            header_pending: format.header,
            format,
            columns,
            width,
            schema,
            table,
            pending: Vec::new(),
            line: 1,
            ended: false,
            fields: (0..width).map(|_| StringBuilder::new()).collect(),
            record_fields: Vec::with_capacity(width),
            lines: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        let mut rest = bytes;
        // The record a message boundary cut: completed line by line (a
        // quoted field may hold newlines), so that the rest of the message
        // is decoded where it lies instead of being copied behind it.
        while !self.pending.is_empty() {
            let Some(newline) = memchr::memchr(b'\n', rest) else {
                self.pending.extend_from_slice(rest);
                return Ok(batches);
            };
            self.pending.extend_from_slice(&rest[..=newline]);
            rest = &rest[newline + 1..];
            if let Some(end) = self.record_end(&self.pending) {
                let pending = std::mem::take(&mut self.pending);
                self.records(&pending[..=end], &mut batches)?;
            }
        }
        let consumed = self.records(rest, &mut batches)?;
        self.pending.extend_from_slice(&rest[consumed..]);
        Ok(batches)
    }

    /// Decodes the complete records at the start of `data`; returns how many
    /// bytes they took.
    fn records(&mut self, data: &[u8], batches: &mut Vec<RecordBatch>) -> Result<usize> {
        let mut start = 0;
        while let Some(end) = self.record_end(&data[start..]) {
            self.record(&data[start..start + end])?;
            start += end + 1;
            if self.lines.len() >= BATCH_ROWS {
                batches.push(self.batch()?);
            }
        }
        Ok(start)
    }

    /// Where the record at the start of `data` ends (its newline), if it is
    /// complete. memchr jumps to the next byte that matters: a COPY is
    /// gigabytes of text, and a loop over every byte was a fifth of a load's
    /// CPU.
    fn record_end(&self, data: &[u8]) -> Option<usize> {
        if !self.format.csv {
            return memchr::memchr(b'\n', data);
        }
        // A newline inside quotes belongs to the field.
        let (quote, escape) = (self.format.quote as u8, self.format.escape as u8);
        let mut i = 0;
        loop {
            // Outside quotes: the record ends at a newline, or a field opens.
            i += memchr::memchr2(b'\n', quote, data.get(i..)?)?;
            if data[i] == b'\n' {
                return Some(i);
            }
            i += 1;
            // Inside quotes until the closing quote; an escaped character
            // never closes them (a doubled quote closes and reopens them).
            loop {
                let rest = data.get(i..)?;
                i += if escape == quote {
                    memchr::memchr(quote, rest)?
                } else {
                    memchr::memchr2(quote, escape, rest)?
                };
                if data[i] == quote {
                    i += 1;
                    break;
                }
                i += 2;
            }
        }
    }

    fn finish(&mut self) -> Result<Option<RecordBatch>> {
        if !self.pending.is_empty() {
            let record = std::mem::take(&mut self.pending);
            self.record(&record)?;
        }
        if self.lines.is_empty() {
            return Ok(None);
        }
        self.batch().map(Some)
    }

    fn record(&mut self, raw: &[u8]) -> Result<()> {
        let line = self.line;
        self.line += 1;
        if self.ended {
            return Ok(());
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw).map_err(|_| {
            Error::new(
                ErrorKind::InvalidTextRepresentation,
                "invalid byte sequence for encoding \"UTF8\"",
            )
            .with_location(format!("COPY {}, line {line}", self.table))
        })?;
        if self.header_pending {
            self.header_pending = false;
            return Ok(());
        }
        if text == "\\." {
            self.ended = true;
            return Ok(());
        }
        let mut fields = std::mem::take(&mut self.record_fields);
        fields.clear();
        if self.format.csv {
            self.split_csv(text, &mut fields);
        } else {
            self.split_text(text, &mut fields);
        }
        let location = || format!("COPY {}, line {line}: \"{text}\"", self.table);
        if fields.len() < self.width {
            let missing = self.copy_column_name(fields.len());
            return Err(Error::new(
                ErrorKind::BadCopyFileFormat,
                format!("missing data for column \"{missing}\""),
            )
            .with_location(location()));
        }
        if fields.len() > self.width {
            return Err(Error::new(
                ErrorKind::BadCopyFileFormat,
                "extra data after last expected column",
            )
            .with_location(location()));
        }
        for (column, field) in self.fields.iter_mut().zip(&fields) {
            match field {
                Field::Null => column.append_null(),
                Field::Span(start, end) => column.append_value(&text[*start..*end]),
                Field::Owned(value) => column.append_value(value),
            }
        }
        self.record_fields = fields;
        self.lines.push(line);
        Ok(())
    }

    /// The name of the table column at `position` in the COPY data.
    fn copy_column_name(&self, position: usize) -> &str {
        self.columns
            .iter()
            .zip(self.schema.fields())
            .find(|(source, _)| matches!(source, Source::Field(p) if *p == position))
            .map_or("?", |(_, field)| field.name().as_str())
    }

    /// Text format: delimiter-separated, `\N` for NULL, backslash escapes.
    /// A field without a backslash is the line's text as it is.
    fn split_text(&self, text: &str, out: &mut Vec<Field>) {
        // Delimiters are one byte (checked when the COPY is parsed), and no
        // byte of a multi-byte character is ASCII.
        let delimiter = self.format.delimiter as u8;
        let bytes = text.as_bytes();
        let (mut start, mut escaped, mut i) = (0, false, 0);
        loop {
            let end = i >= bytes.len();
            if end || bytes[i] == delimiter {
                let stop = i.min(bytes.len());
                let raw = &text[start..stop];
                out.push(if raw == self.format.null {
                    Field::Null
                } else if escaped {
                    Field::Owned(unescape_text(raw))
                } else {
                    Field::Span(start, stop)
                });
                if end {
                    return;
                }
                (start, escaped) = (i + 1, false);
            } else if bytes[i] == b'\\' {
                // The escaped character is data, even a delimiter.
                escaped = true;
                i += 1;
            }
            i += 1;
        }
    }

    /// CSV: quoted fields may hold delimiters, newlines and doubled quotes;
    /// an unquoted field equal to the NULL string is NULL.
    fn split_csv(&self, text: &str, out: &mut Vec<Field>) {
        let (delimiter, quote) = (self.format.delimiter as u8, self.format.quote as u8);
        let bytes = text.as_bytes();
        let mut start = 0;
        loop {
            let rest = &bytes[start..];
            let stop = memchr::memchr2(delimiter, quote, rest);
            let next = if stop.is_some_and(|k| rest[k] == quote) {
                let (field, next) = self.quoted_csv_field(bytes, start);
                out.push(Field::Owned(field));
                next
            } else {
                let end = stop.map_or(bytes.len(), |k| start + k);
                let raw = &text[start..end];
                out.push(if raw == self.format.null {
                    Field::Null
                } else {
                    Field::Span(start, end)
                });
                stop.map(|_| end + 1)
            };
            match next {
                Some(n) => start = n,
                None => return,
            }
        }
    }

    /// A CSV field with quotes in it, starting at `start`: its value, and
    /// where the next field starts (None at the end of the line).
    fn quoted_csv_field(&self, bytes: &[u8], start: usize) -> (String, Option<usize>) {
        let (delimiter, quote, escape) = (
            self.format.delimiter as u8,
            self.format.quote as u8,
            self.format.escape as u8,
        );
        let mut field = Vec::new();
        let mut in_quotes = false;
        let mut next = None;
        let mut i = start;
        while i < bytes.len() {
            let b = bytes[i];
            let following = bytes.get(i + 1).copied();
            if in_quotes {
                if b == escape
                    && escape != quote
                    && (following == Some(quote) || following == Some(escape))
                {
                    field.push(following.unwrap_or(b));
                    i += 1;
                } else if b == quote && escape == quote && following == Some(quote) {
                    // A doubled quote is a literal quote.
                    field.push(quote);
                    i += 1;
                } else if b == quote {
                    in_quotes = false;
                } else {
                    field.push(b);
                }
            } else if b == quote {
                in_quotes = true;
            } else if b == delimiter {
                next = Some(i + 1);
                break;
            } else {
                field.push(b);
            }
            i += 1;
        }
        // Only ASCII quote and escape bytes were left out: still UTF-8.
        (String::from_utf8_lossy(&field).into_owned(), next)
    }

    /// The rows collected so far as a batch of the table's columns.
    fn batch(&mut self) -> Result<RecordBatch> {
        let lines = std::mem::take(&mut self.lines);
        let fields: Vec<StringArray> = self.fields.iter_mut().map(|f| f.finish()).collect();
        let n = lines.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (source, field) in self.columns.iter().zip(self.schema.fields()) {
            let target = field.data_type();
            let array = match source {
                Source::Field(i) => {
                    parse_column(&fields[*i], target, &lines, field.name(), &self.table)?
                }
                Source::Fixed(Some(text)) => {
                    let strings: ArrayRef = Arc::new(StringArray::from(vec![text.as_str(); n]));
                    arrow::compute::cast(&strings, target)?
                }
                Source::Fixed(None) => new_null_array(target, n),
            };
            columns.push(array);
        }
        let loose = Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        );
        Ok(RecordBatch::try_new(Arc::new(loose), columns)?)
    }
}

/// The value of a text-format field with backslash escapes in it.
fn unescape_text(raw: &str) -> String {
    let mut field = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            field.push(c);
            continue;
        }
        let Some(next) = chars.next() else { break };
        match next {
            'n' => field.push('\n'),
            't' => field.push('\t'),
            'r' => field.push('\r'),
            'b' => field.push('\u{8}'),
            'f' => field.push('\u{c}'),
            'v' => field.push('\u{b}'),
            d @ '0'..='7' => {
                let mut code = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|o| o.to_digit(8)) {
                        Some(digit) => {
                            code = code * 8 + digit;
                            chars.next();
                        }
                        None => break,
                    }
                }
                field.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            other => field.push(other),
        }
    }
    field
}

/// Casts text values to a column type; the first value that does not parse
/// fails the COPY with PostgreSQL's message and the line it is on.
fn parse_column(
    strings: &StringArray,
    target: &DataType,
    lines: &[u64],
    column: &str,
    table: &str,
) -> Result<ArrayRef> {
    if target == &DataType::Utf8 {
        return Ok(Arc::new(strings.clone()));
    }
    if let DataType::Decimal128(precision, scale) = target
        && let Some(parsed) = plain_decimals(strings, *precision, *scale)
    {
        return Ok(parsed);
    }
    // Where value `i` is, for its error: PostgreSQL's CONTEXT line.
    let location = |i: usize| {
        let line = lines.get(i).copied().unwrap_or_default();
        format!(
            "COPY {table}, line {line}, column {column}: \"{}\"",
            strings.value(i)
        )
    };
    if let DataType::Timestamp(_, zone) = target {
        let parsed = timestamps(strings, zone.is_some(), |i, e| e.with_location(location(i)))?;
        return Ok(arrow::compute::cast(&parsed, target)?);
    }
    let options = arrow::compute::CastOptions {
        safe: true,
        ..Default::default()
    };
    let source: ArrayRef = Arc::new(strings.clone());
    let parsed = arrow::compute::cast_with_options(&source, target, &options)?;
    if parsed.null_count() != strings.null_count() {
        for i in 0..strings.len() {
            if strings.is_valid(i) && parsed.is_null(i) {
                return Err(Error::new(
                    ErrorKind::InvalidTextRepresentation,
                    format!(
                        "invalid input syntax for type {}: \"{}\"",
                        type_name(target),
                        strings.value(i)
                    ),
                )
                .with_location(location(i)));
            }
        }
    }
    Ok(parsed)
}

/// Decimal text in its plain form, as data files and `COPY TO` write it, parsed
/// directly: Arrow's general cast formats a string per value, which was a
/// quarter of a TPC-H load. None when any value needs the general cast.
fn plain_decimals(strings: &StringArray, precision: u8, scale: i8) -> Option<ArrayRef> {
    let mut builder = Decimal128Builder::with_capacity(strings.len());
    for value in strings.iter() {
        match value {
            None => builder.append_null(),
            Some(text) => builder.append_value(plain_decimal(text, precision, scale)?),
        }
    }
    let array = builder
        .finish()
        .with_precision_and_scale(precision, scale)
        .ok()?;
    Some(Arc::new(array))
}

/// `[+-]digits[.digits]` with at most `scale` fractional digits that fits
/// `precision`, as its exact scaled integer; None for anything else (spaces,
/// exponents, rounding, overflow), which the general cast decides on.
fn plain_decimal(text: &str, precision: u8, scale: i8) -> Option<i128> {
    let scale = u32::try_from(scale).ok()?;
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (mut value, mut fraction, mut point, mut any) = (0i128, 0u32, false, false);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                value = value.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
                fraction += u32::from(point);
                any = true;
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    if !any || fraction > scale {
        return None;
    }
    let value = value.checked_mul(10i128.checked_pow(scale - fraction)?)?;
    if value >= 10i128.checked_pow(u32::from(precision))? {
        return None;
    }
    Some(if negative { -value } else { value })
}

fn type_name(data_type: &DataType) -> String {
    crate::fuse::schema::ColumnType::from_arrow(data_type)
        .map(|t| t.sql_name())
        .unwrap_or_else(|_| data_type.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    fn decoder(format: CopyFormat) -> Decoder {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let columns = vec![Source::Field(0), Source::Field(1)];
        Decoder::new(format, columns, 2, schema, "t".into())
    }

    fn decode(format: CopyFormat, chunks: &[&str]) -> Vec<(Option<i32>, Option<String>)> {
        let mut d = decoder(format);
        let mut batches = Vec::new();
        for chunk in chunks {
            batches.extend(d.feed(chunk.as_bytes()).unwrap());
        }
        batches.extend(d.finish().unwrap());
        let mut out = Vec::new();
        for batch in batches {
            let a = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int32Array>()
                .unwrap();
            let b = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            for i in 0..batch.num_rows() {
                out.push((
                    a.is_valid(i).then(|| a.value(i)),
                    b.is_valid(i).then(|| b.value(i).to_string()),
                ));
            }
        }
        out
    }

    #[test]
    fn csv_quotes_span_chunks_and_lines() {
        let rows = decode(
            CopyFormat::new(true),
            &["1,\"a\n", "b,\"\"c\"\"\"\r\n2,\n3,\"\"\n"],
        );
        assert_eq!(
            rows,
            vec![
                (Some(1), Some("a\nb,\"c\"".into())),
                (Some(2), None),
                (Some(3), Some(String::new())),
            ]
        );
    }

    /// Wherever the client's messages cut the data, the rows are the same
    /// (the record a boundary cuts is completed line by line).
    #[test]
    fn rows_do_not_depend_on_where_messages_end() {
        let mut backslash = CopyFormat::new(true);
        backslash.escape = '\\';
        let cases = [
            (
                CopyFormat::new(true),
                "1,\"a\nb,\"\"c\"\"\"\r\n2,\n3,\"\"\n4,\"\n\n\"\n",
            ),
            (backslash, "1,\"x\\\"\ny\"\n2,z\n3,\"\\\\\"\n"),
            (CopyFormat::new(false), "1\t\\101\\\\\n\\N\t\\N\n5\tfive\n"),
        ];
        for (format, data) in cases {
            let whole = decode(format.clone(), &[data]);
            assert_eq!(
                whole.len(),
                3 + usize::from(data.starts_with("1,\"a")),
                "{data:?}"
            );
            for cut in 1..data.len() {
                let (a, b) = data.split_at(cut);
                assert_eq!(
                    decode(format.clone(), &[a, b]),
                    whole,
                    "cut at {cut} of {data:?}"
                );
            }
            let bytes: Vec<String> = data.chars().map(String::from).collect();
            let bytes: Vec<&str> = bytes.iter().map(String::as_str).collect();
            assert_eq!(
                decode(format, &bytes),
                whole,
                "one character a message: {data:?}"
            );
        }
    }

    #[test]
    fn csv_escape_other_than_quote() {
        let mut format = CopyFormat::new(true);
        format.escape = '\\';
        // An escaped quote does not end the quoted field, even at a chunk end.
        let rows = decode(format, &["1,\"x\\", "\"\ny\"\n2,z\n"]);
        assert_eq!(
            rows,
            vec![
                (Some(1), Some("x\"\ny".into())),
                (Some(2), Some("z".into()))
            ]
        );
    }

    #[test]
    fn text_end_marker_and_escapes() {
        let rows = decode(
            CopyFormat::new(false),
            &["1\t\\101\\\\\n\\N\t\\N\n\\.\n9\tignored\n"],
        );
        assert_eq!(rows, vec![(Some(1), Some("A\\".into())), (None, None)]);
    }

    #[test]
    fn escaped_delimiters_quotes_inside_fields_and_multibyte_text() {
        let rows = decode(CopyFormat::new(false), &["1\tä\\tb\\\tc\n"]);
        assert_eq!(rows, vec![(Some(1), Some("ä\tb\tc".into()))]);
        let rows = decode(CopyFormat::new(true), &["1,x\"y,z\"wé\n2,\"\"\"\"\n"]);
        assert_eq!(
            rows,
            vec![
                (Some(1), Some("xy,zwé".into())),
                (Some(2), Some("\"".into()))
            ]
        );
    }

    #[test]
    fn plain_decimals_parse_exactly_and_leave_the_rest_to_the_cast() {
        assert_eq!(plain_decimal("123.45", 15, 2), Some(12345));
        assert_eq!(plain_decimal("-0.5", 15, 2), Some(-50));
        assert_eq!(plain_decimal("+7", 15, 2), Some(700));
        assert_eq!(plain_decimal("7.", 15, 2), Some(700));
        assert_eq!(plain_decimal(".25", 15, 2), Some(25));
        // Rounding, exponents, spaces, NaN and overflow go to the general cast.
        for text in ["1.005", "1e3", " 1", "NaN", "", "-", ".", "1.2.3", "1000"] {
            assert_eq!(plain_decimal(text, 5, 2), None, "{text}");
        }
        assert_eq!(plain_decimal("999.99", 5, 2), Some(99999));
    }

    #[test]
    fn errors_name_line_and_column() {
        let mut d = decoder(CopyFormat::new(false));
        d.feed(b"1\tx\n").unwrap();
        let e = d.feed(b"2\n").err().unwrap();
        assert_eq!(e.message(), "missing data for column \"b\"");
        assert_eq!(e.location(), Some("COPY t, line 2: \"2\""));
        let mut d = decoder(CopyFormat::new(false));
        d.feed(b"1\tx\nzz\ty\n").unwrap();
        let e = d.finish().err().unwrap();
        assert_eq!(e.sqlstate(), "22P02");
        assert_eq!(e.location(), Some("COPY t, line 2, column a: \"zz\""));
    }
}
