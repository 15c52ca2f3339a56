//! COPY TO STDOUT over the wire: rows in PostgreSQL's text and CSV formats.
//! (COPY FROM STDIN data is decoded by the session.)
//!
//! Values are rendered exactly as in a text-format DataRow (PostgreSQL's
//! output text), then escaped or quoted for the COPY format.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use bytes::{BufMut, BytesMut};
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::portal::Format;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};

use super::error::to_pgwire;
use crate::query::BatchStream;
use crate::sql::CopyFormat;

/// Sends CopyOutResponse, one CopyData per row, and CopyDone; returns the
/// number of rows. The caller sends the `COPY n` CommandComplete. An error
/// mid-stream is returned (the caller's ErrorResponse ends the copy, as in
/// PostgreSQL).
pub async fn send_copy_out<C>(
    client: &mut C,
    schema: SchemaRef,
    mut batches: BatchStream,
    format: &CopyFormat,
) -> PgWireResult<u64>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let fields = Arc::new(super::encode::fields(&schema, &Format::UnifiedText)?);
    let columns = fields.len();
    client
        .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            0,
            columns as i16,
            vec![0; columns],
        )))
        .await?;
    if format.header {
        let mut line = BytesMut::new();
        let names: Vec<Option<&[u8]>> = fields.iter().map(|f| Some(f.name().as_bytes())).collect();
        write_row(&mut line, &names, format);
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(line.freeze())))
            .await?;
    }
    let mut rows = 0u64;
    while let Some(batch) = batches.next().await {
        let batch = super::pgtext::render(batch.map_err(to_pgwire)?, &fields);
        for row in super::rows::encode_batch(fields.clone(), batch) {
            let row = row?;
            let mut line = BytesMut::new();
            write_row(&mut line, &split_data_row(&row.data, columns)?, format);
            client
                .feed(PgWireBackendMessage::CopyData(CopyData::new(line.freeze())))
                .await?;
            rows += 1;
        }
    }
    client
        .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(rows)
}

/// The values of a text-format DataRow body: per column an i32 length
/// (-1 for NULL) and that many bytes.
fn split_data_row(data: &[u8], columns: usize) -> PgWireResult<Vec<Option<&[u8]>>> {
    let mut values = Vec::with_capacity(columns);
    let mut rest = data;
    for _ in 0..columns {
        let malformed = || to_pgwire(crate::error::Error::internal("malformed row encoding"));
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        let len = i32::from_be_bytes(*len);
        if len < 0 {
            values.push(None);
            rest = tail;
        } else {
            let (value, tail) = tail.split_at_checked(len as usize).ok_or_else(malformed)?;
            values.push(Some(value));
            rest = tail;
        }
    }
    Ok(values)
}

/// One COPY line (with its newline) for `values` in `format`.
fn write_row(out: &mut BytesMut, values: &[Option<&[u8]>], format: &CopyFormat) {
    let mut delimiter = [0u8; 4];
    let delimiter = format.delimiter.encode_utf8(&mut delimiter).as_bytes();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.put_slice(delimiter);
        }
        match value {
            None => out.put_slice(format.null.as_bytes()),
            Some(v) if format.csv => write_csv_value(out, v, delimiter, format),
            Some(v) => write_text_value(out, v, delimiter),
        }
    }
    out.put_u8(b'\n');
}

/// Text format: backslash escapes for the characters that would end a
/// field or a line.
fn write_text_value(out: &mut BytesMut, value: &[u8], delimiter: &[u8]) {
    for &b in value {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            0x08 => out.put_slice(b"\\b"),
            0x0c => out.put_slice(b"\\f"),
            0x0b => out.put_slice(b"\\v"),
            b if delimiter.len() == 1 && b == delimiter[0] => {
                out.put_u8(b'\\');
                out.put_u8(b);
            }
            b => out.put_u8(b),
        }
    }
}

/// CSV: quoted when the value holds the delimiter, the quote, a line break,
/// or would read back as NULL (equals the NULL string; PostgreSQL also
/// quotes `\.`); quotes and escapes inside are escaped.
fn write_csv_value(out: &mut BytesMut, value: &[u8], delimiter: &[u8], format: &CopyFormat) {
    let mut quote = [0u8; 4];
    let quote = format.quote.encode_utf8(&mut quote).as_bytes();
    let mut escape = [0u8; 4];
    let escape = format.escape.encode_utf8(&mut escape).as_bytes();
    let needs_quotes = value == format.null.as_bytes()
        || value == b"\\."
        || value.iter().any(|&b| b == b'\n' || b == b'\r')
        || contains(value, delimiter)
        || contains(value, quote);
    if !needs_quotes {
        out.put_slice(value);
        return;
    }
    out.put_slice(quote);
    let mut i = 0;
    while i < value.len() {
        let rest = &value[i..];
        if rest.starts_with(quote) || (escape != quote && rest.starts_with(escape)) {
            out.put_slice(escape);
        }
        out.put_u8(value[i]);
        i += 1;
    }
    out.put_slice(quote);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(values: &[Option<&str>], format: &CopyFormat) -> String {
        let values: Vec<Option<&[u8]>> = values.iter().map(|v| v.map(str::as_bytes)).collect();
        let mut out = BytesMut::new();
        write_row(&mut out, &values, format);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn text_format_escapes_like_postgres() {
        let text = CopyFormat::new(false);
        assert_eq!(
            line(&[Some("a\tb"), None, Some("x\\y\nz"), Some("")], &text),
            "a\\tb\t\\N\tx\\\\y\\nz\t\n"
        );
        let mut pipe = CopyFormat::new(false);
        pipe.delimiter = '|';
        assert_eq!(line(&[Some("a|b"), Some("c")], &pipe), "a\\|b|c\n");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let csv = CopyFormat::new(true);
        assert_eq!(
            line(
                &[
                    Some("plain"),
                    None,
                    Some(""),
                    Some("a,b"),
                    Some("say \"hi\""),
                    Some("l1\nl2")
                ],
                &csv
            ),
            "plain,,\"\",\"a,b\",\"say \"\"hi\"\"\",\"l1\nl2\"\n"
        );
        let mut custom = CopyFormat::new(true);
        custom.null = "NULL".into();
        custom.escape = '\\';
        assert_eq!(
            line(&[Some("NULL"), None, Some("q\"\\")], &custom),
            "\"NULL\",NULL,\"q\\\"\\\\\"\n"
        );
    }
}
