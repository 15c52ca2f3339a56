//! Bind parameters as clients send them, decoded as Execute does
//! (`fusegate::wire::decode_parameters`: fusegate's checks, then arrow-pg):
//! every scalar type and the array types arrow-pg decodes, text and binary,
//! typed by the client (Parse OIDs) or by inference. Any bytes must give a value or an error, never a panic.
//!
//! Input: byte 0 picks the type, byte 1 the format (bit 0: binary), whether
//! the client names the type (bit 1) and NULL (bit 2); the rest is the value.
#![no_main]

use std::sync::Arc;

use arrow_schema::{DataType, Field, IntervalUnit, TimeUnit};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::api::stmt::StoredStatement;
use pgwire::messages::extendedquery::Bind;

/// The types a client may name in Parse.
const PG_TYPES: &[Type] = &[
    Type::BOOL,
    Type::INT2,
    Type::INT4,
    Type::INT8,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::NUMERIC,
    Type::TEXT,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::NAME,
    Type::BYTEA,
    Type::DATE,
    Type::TIME,
    Type::TIMESTAMP,
    Type::TIMESTAMPTZ,
    Type::INTERVAL,
    Type::UUID,
    Type::JSON,
    Type::JSONB,
    Type::OID,
    Type::CHAR,
    Type::UNKNOWN,
    // Arrays (text ones are parsed by fusegate first, see src/wire/array_param.rs).
    Type::BOOL_ARRAY,
    Type::INT2_ARRAY,
    Type::INT4_ARRAY,
    Type::INT8_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::FLOAT8_ARRAY,
    Type::NUMERIC_ARRAY,
    Type::TEXT_ARRAY,
    Type::VARCHAR_ARRAY,
    Type::INTERVAL_ARRAY,
];

/// The types fusegate's planner infers for parameters (the columns' types).
fn inferred(i: u8) -> DataType {
    let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    match i % 18 {
        0 => DataType::Boolean,
        1 => DataType::Int16,
        2 => DataType::Int32,
        3 => DataType::Int64,
        4 => DataType::Float32,
        5 => DataType::Float64,
        6 => DataType::Decimal128(38, 10),
        7 => DataType::Utf8,
        8 => DataType::Binary,
        9 => DataType::Date32,
        10 => DataType::Time64(TimeUnit::Microsecond),
        11 => DataType::Timestamp(TimeUnit::Microsecond, None),
        12 => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        13 => DataType::Interval(IntervalUnit::MonthDayNano),
        14 => list(DataType::Int32),
        15 => list(DataType::Utf8),
        16 => list(DataType::Decimal128(38, 10)),
        _ => list(DataType::Float64),
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, flags, value @ ..] = data else {
        return;
    };
    let named = flags & 2 != 0;
    let statement = StoredStatement::new(
        "fuzz".to_string(),
        (),
        vec![named.then(|| PG_TYPES[*pick as usize % PG_TYPES.len()].clone())],
    );
    let bind = Bind::new(
        None,
        None,
        vec![i16::from(flags & 1)],
        vec![(flags & 4 == 0).then(|| Bytes::copy_from_slice(value))],
        vec![],
    );
    let Ok(portal) = Portal::try_new(&bind, Arc::new(statement)) else {
        return;
    };
    let inferred = inferred(*pick);
    let _ = fusegate::wire::decode_parameters(&portal, &[Some(&inferred)]);
});
