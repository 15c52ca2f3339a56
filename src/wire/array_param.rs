//! Array bind parameters, made safe for arrow-pg.
//!
//! pgwire's text-array reader is looser than PostgreSQL's `array_in`: it
//! keeps the blanks around unquoted elements, reads `{,4}` as a NULL, and a
//! quoted `"NULL"` or `""` as NULL too, and arrow-pg panics building a
//! `numeric[]` whose elements have different scales. So a text array is
//! parsed here with PostgreSQL's rules (22P02 "malformed array literal" where
//! PostgreSQL says so) and handed on in a form pgwire reads correctly, or
//! refused (0A000) where it cannot be; a `numeric[]` gets one decimal type
//! wide enough for all its elements.

use arrow::datatypes::{DataType, Field};
use pgwire::api::Type;

use crate::error::{Error, ErrorKind};

/// What a parameter of an array type needs before arrow-pg decodes it.
pub struct Prepared {
    /// The text to decode instead of the client's (text format only).
    pub text: Option<Vec<u8>>,
    /// The type to decode into instead of the inferred one (numeric[]).
    pub inferred: Option<DataType>,
}

/// The element kinds whose arrays arrow-pg decodes.
#[derive(Clone, Copy, PartialEq)]
enum Element {
    Text,
    Numeric,
    Other,
}

fn element(ty: &Type) -> Option<Element> {
    Some(match *ty {
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => Element::Text,
        Type::NUMERIC_ARRAY => Element::Numeric,
        Type::BOOL_ARRAY
        | Type::INT2_ARRAY
        | Type::INT4_ARRAY
        | Type::INT8_ARRAY
        | Type::FLOAT4_ARRAY
        | Type::FLOAT8_ARRAY
        | Type::INTERVAL_ARRAY => Element::Other,
        _ => return None,
    })
}

/// Checks and rewrites parameter `n` (1-based, for messages) of array type
/// `ty`; `None` when `ty` is not an array type arrow-pg decodes.
pub fn prepare(
    n: usize,
    ty: &Type,
    raw: &[u8],
    binary: bool,
    inferred: Option<&DataType>,
) -> Result<Option<Prepared>, Error> {
    let Some(kind) = element(ty) else {
        return Ok(None);
    };
    let mut prepared = Prepared {
        text: None,
        inferred: None,
    };
    let scale = if binary {
        // postgres-types trusts the element count when it allocates (a Bind
        // claiming 2^31 elements aborted the process): every binary array
        // is walked here first.
        let scale = binary_array_scale(n, ty, raw)?;
        if kind != Element::Numeric {
            return Ok(None);
        }
        scale
    } else {
        let text = std::str::from_utf8(raw).map_err(|_| {
            Error::new(
                ErrorKind::InvalidTextRepresentation,
                format!("bind parameter {n} is not valid UTF-8"),
            )
        })?;
        let elements = parse(text).map_err(|refusal| match refusal {
            Refusal::Malformed(why) => Error::new(
                ErrorKind::InvalidTextRepresentation,
                format!("malformed array literal: \"{text}\""),
            )
            .with_detail(why),
            Refusal::Unsupported(what) => Error::new(
                ErrorKind::FeatureNotSupported,
                format!("bind parameter {n}: {what} are not supported in array parameters"),
            ),
        })?;
        prepared.text = Some(canonical(n, kind, &elements)?);
        if kind != Element::Numeric {
            return Ok(Some(prepared));
        }
        text_numeric_scale(n, &elements)?
    };
    let decodable = matches!(
        inferred,
        Some(DataType::List(field)) if matches!(
            field.data_type(),
            DataType::Decimal128(..) | DataType::UInt64 | DataType::Float64 | DataType::Float32
        )
    );
    if !decodable {
        prepared.inferred = Some(DataType::List(
            Field::new("item", DataType::Decimal128(38, scale as i8), true).into(),
        ));
    }
    Ok(Some(prepared))
}

/// Why a text array is refused: PostgreSQL would refuse it too (22P02, with
/// its detail), or it is valid but fusegate cannot take it as a parameter.
#[derive(Debug, Clone, PartialEq)]
enum Refusal {
    Malformed(std::borrow::Cow<'static, str>),
    Unsupported(&'static str),
}

/// An element of a text array: its value (escapes resolved) and whether it
/// was quoted; `None` for an unquoted NULL.
type Elements = Vec<Option<(String, bool)>>;

/// Parses a one-dimensional array literal as PostgreSQL's array_in does.
fn parse(text: &str) -> Result<Elements, Refusal> {
    use Refusal::{Malformed, Unsupported};
    const END: Refusal = Malformed(std::borrow::Cow::Borrowed("Unexpected end of input."));
    let body = text.trim_matches(is_blank);
    if body.starts_with('[') {
        return Err(Unsupported("array dimensions"));
    }
    let Some(inner) = body.strip_prefix('{') else {
        return Err(Malformed(
            "Array value must start with \"{\" or dimension information.".into(),
        ));
    };
    let mut chars = inner.chars().peekable();
    let mut elements = Elements::new();
    while chars.next_if(|c| is_blank(*c)).is_some() {}
    if chars.next_if_eq(&'}').is_none() {
        loop {
            while chars.next_if(|c| is_blank(*c)).is_some() {}
            if chars.peek() == Some(&'{') {
                return Err(Unsupported("multidimensional arrays"));
            }
            let mut value = String::new();
            let mut quoted = false;
            // Blanks at the end of an unquoted value are not part of it.
            let mut kept = 0;
            let last = loop {
                match chars.next().ok_or(END.clone())? {
                    c @ (',' | '}') => break c,
                    '"' if value.is_empty() && !quoted => {
                        quoted = true;
                        loop {
                            match chars.next().ok_or(END.clone())? {
                                '"' => break,
                                '\\' => value.push(chars.next().ok_or(END.clone())?),
                                c => value.push(c),
                            }
                        }
                        kept = value.len();
                        while chars.next_if(|c| is_blank(*c)).is_some() {}
                        if !matches!(chars.peek(), Some(',' | '}')) {
                            return Err(Malformed("Incorrectly quoted array element.".into()));
                        }
                    }
                    c @ ('{' | '"') => {
                        return Err(Malformed(format!("Unexpected \"{c}\" character.").into()));
                    }
                    '\\' if !quoted => {
                        value.push(chars.next().ok_or(END.clone())?);
                        kept = value.len();
                    }
                    c if !quoted => {
                        value.push(c);
                        if !is_blank(c) {
                            kept = value.len();
                        }
                    }
                    c => return Err(Malformed(format!("Unexpected \"{c}\" character.").into())),
                }
            };
            if value.is_empty() && !quoted {
                return Err(Malformed(
                    format!("Unexpected \"{last}\" character.").into(),
                ));
            }
            value.truncate(kept);
            let null = !quoted && value.eq_ignore_ascii_case("NULL");
            elements.push((!null).then_some((value, quoted)));
            if last == '}' {
                break;
            }
        }
    }
    if chars.any(|c| !is_blank(c)) {
        return Err(Malformed("Junk after closing right brace.".into()));
    }
    Ok(elements)
}

/// PostgreSQL's array_isspace.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
}

/// The array as pgwire reads it correctly: every value quoted, NULLs bare.
/// pgwire takes a value that is empty or NULL once trimmed for a NULL, which
/// for text is a different value (0A000) and for other types an invalid one
/// (22P02, as PostgreSQL).
fn canonical(n: usize, kind: Element, elements: &Elements) -> Result<Vec<u8>, Error> {
    let mut out = String::from("{");
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let Some((value, _)) = element else {
            out.push_str("NULL");
            continue;
        };
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("NULL") {
            return Err(if kind == Element::Text {
                Error::new(
                    ErrorKind::FeatureNotSupported,
                    format!(
                        "bind parameter {n}: a text array element {value:?} is not supported in text format"
                    ),
                )
                .with_hint("Send the array in binary format.")
            } else {
                Error::new(
                    ErrorKind::InvalidTextRepresentation,
                    format!("bind parameter {n}: invalid array element {value:?}"),
                )
            });
        }
        out.push('"');
        for c in value.chars() {
            if matches!(c, '"' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    Ok(out.into_bytes())
}

/// The binary size of a fixed-size element type.
fn element_size(ty: &Type) -> Option<usize> {
    Some(match *ty {
        Type::BOOL_ARRAY => 1,
        Type::INT2_ARRAY => 2,
        Type::INT4_ARRAY | Type::FLOAT4_ARRAY => 4,
        Type::INT8_ARRAY | Type::FLOAT8_ARRAY => 8,
        Type::INTERVAL_ARRAY => 16,
        _ => return None,
    })
}

/// Digits a numeric may have to be decoded (rust_decimal's 96-bit mantissa).
const NUMERIC_DIGITS: usize = 28;

fn too_large(n: usize) -> Error {
    Error::new(
        ErrorKind::NumericValueOutOfRange,
        format!(
            "bind parameter {n} has a numeric element beyond the {NUMERIC_DIGITS} digits fusegate accepts in an array parameter"
        ),
    )
}

/// The largest scale among a text numeric[]'s elements; each must be a
/// plain decimal of at most 28 digits.
fn text_numeric_scale(n: usize, elements: &Elements) -> Result<u32, Error> {
    let mut scale = 0;
    for (value, _) in elements.iter().flatten() {
        let v = value.trim();
        let unsigned = v.strip_prefix(['-', '+']).unwrap_or(v);
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
            return Err(Error::new(
                ErrorKind::InvalidTextRepresentation,
                format!("invalid input syntax for type numeric: \"{v}\""),
            ));
        }
        if int.trim_start_matches('0').len() + frac.len() > NUMERIC_DIGITS {
            return Err(too_large(n));
        }
        scale = scale.max(frac.len() as u32);
    }
    Ok(scale)
}

/// Checks a binary array of `ty` (array_send's layout: dimensions, flags,
/// element type, then each element's length and value) and returns the
/// largest scale among its elements if they are numerics.
fn binary_array_scale(n: usize, ty: &Type, raw: &[u8]) -> Result<u32, Error> {
    let malformed = || {
        Error::new(
            ErrorKind::InvalidBinaryRepresentation,
            format!("incorrect binary data format in bind parameter {n}"),
        )
    };
    let int = |at: usize| -> Result<i32, Error> {
        raw.get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(malformed)
    };
    let dims = int(0)?;
    if !(0..=1).contains(&dims) {
        return Err(malformed());
    }
    let mut at = 12;
    let count = if dims == 1 {
        let len = int(at)?;
        at += 8;
        usize::try_from(len).map_err(|_| malformed())?
    } else {
        0
    };
    let mut scale = 0;
    for _ in 0..count {
        let len = int(at)?;
        at += 4;
        if len < 0 {
            continue;
        }
        let len = len as usize;
        let value = raw.get(at..at + len).ok_or_else(malformed)?;
        at += len;
        if *ty == Type::NUMERIC_ARRAY {
            super::params::check_numeric(value).map_err(|overflow| match overflow {
                true => too_large(n),
                false => malformed(),
            })?;
            let dscale = u16::from_be_bytes([value[6], value[7]]);
            scale = scale.max(u32::from(dscale));
        } else if let Some(size) = element_size(ty)
            && len != size
        {
            return Err(malformed());
        }
    }
    if at != raw.len() {
        return Err(malformed());
    }
    Ok(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(text: &str) -> Result<Vec<Option<&'static str>>, Refusal> {
        parse(text).map(|e| e.into_iter().map(|v| v.map(|(s, _)| &*s.leak())).collect())
    }

    #[test]
    fn parses_as_postgresql_does() {
        assert_eq!(elements("{}"), Ok(vec![]));
        assert_eq!(elements(" { } "), Ok(vec![]));
        assert_eq!(elements("{1,2}"), Ok(vec![Some("1"), Some("2")]));
        assert_eq!(elements("{ a b , c }"), Ok(vec![Some("a b"), Some("c")]));
        assert_eq!(elements("{NULL,null}"), Ok(vec![None, None]));
        assert_eq!(
            elements(r#"{"NULL","", " x ",a\,b,"q\"q"}"#),
            Ok(vec![
                Some("NULL"),
                Some(""),
                Some(" x "),
                Some("a,b"),
                Some("q\"q")
            ])
        );
        for bad in [
            "",
            "1,2",
            "{",
            "{1",
            "{1,}",
            "{,4}",
            "{1}}",
            "{1} x",
            "{{1},{2}}",
            "{a\"b}",
            "{\"a\"b}",
            "[1:2]={1,2}",
            "{1,,2}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            parse("{{1},{2}}"),
            Err(Refusal::Unsupported("multidimensional arrays"))
        );
    }

    #[test]
    fn rewrites_to_what_pgwire_reads_correctly() {
        let text = |s: &str, kind| {
            let elements = parse(s).unwrap();
            canonical(1, kind, &elements).map(|b| String::from_utf8(b).unwrap())
        };
        assert_eq!(
            text(r#"{ a , "b\"c" ,NULL}"#, Element::Text).unwrap(),
            r#"{"a","b\"c",NULL}"#
        );
        assert_eq!(text("{ 1 , 2 }", Element::Other).unwrap(), r#"{"1","2"}"#);
        assert_eq!(
            text(r#"{"NULL"}"#, Element::Text).unwrap_err().kind(),
            ErrorKind::FeatureNotSupported
        );
        assert_eq!(
            text(r#"{""}"#, Element::Other).unwrap_err().kind(),
            ErrorKind::InvalidTextRepresentation
        );
    }

    #[test]
    fn binary_arrays_are_walked_before_decoding() {
        let header = |count: i32| {
            let mut v = Vec::new();
            for word in [1, 0, 701, count, 1] {
                v.extend_from_slice(&i32::to_be_bytes(word));
            }
            v
        };
        // A count far beyond the bytes sent (it made postgres-types allocate 16 GiB).
        let err = binary_array_scale(1, &Type::FLOAT8_ARRAY, &header(i32::MAX)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidBinaryRepresentation);
        let mut two = header(2);
        for value in [1.5f64, -2.0] {
            two.extend_from_slice(&8i32.to_be_bytes());
            two.extend_from_slice(&value.to_be_bytes());
        }
        assert_eq!(binary_array_scale(1, &Type::FLOAT8_ARRAY, &two).unwrap(), 0);
        // An element of the wrong size, or bytes left over.
        assert!(binary_array_scale(1, &Type::INT4_ARRAY, &two).is_err());
        two.push(0);
        assert!(binary_array_scale(1, &Type::FLOAT8_ARRAY, &two).is_err());
    }

    #[test]
    fn numeric_arrays_get_one_scale() {
        let scale = |s: &str| text_numeric_scale(1, &parse(s).unwrap());
        assert_eq!(scale("{1, 2.50, -0.125, NULL}").unwrap(), 3);
        assert_eq!(
            scale("{1e5}").unwrap_err().kind(),
            ErrorKind::InvalidTextRepresentation
        );
        assert_eq!(
            scale("{12345678901234567890123456789}").unwrap_err().kind(),
            ErrorKind::NumericValueOutOfRange
        );
    }
}
