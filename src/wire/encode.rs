//! Session output → pgwire responses: Arrow batches become DataRows (text or
//! binary, per column, by `rows`) lazily, batch by batch, as the client reads.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use futures::{StreamExt, stream};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use super::error::to_pgwire;
use crate::error::Error;
use crate::query::{BatchStream, PG_TYPE_KEY, PG_TYPMOD_KEY};
use crate::session::Output;

/// Row descriptions for a result schema, in the requested formats; columns
/// read straight from a table report its declared type (varchar) and
/// modifier (length, precision and scale), as PostgreSQL does.
pub fn fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let fields = arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)?;
    Ok(fields
        .into_iter()
        .zip(schema.fields())
        .map(|(info, field)| {
            let metadata = field.metadata();
            let info = if metadata.get(PG_TYPE_KEY).map(String::as_str) == Some("varchar")
                && *info.datatype() == Type::TEXT
            {
                FieldInfo::new(
                    info.name().to_string(),
                    info.table_id(),
                    info.column_id(),
                    Type::VARCHAR,
                    info.format(),
                )
            } else {
                info
            };
            let size = type_size(info.datatype());
            let info = info.with_type_size(size);
            match metadata.get(PG_TYPMOD_KEY).and_then(|t| t.parse().ok()) {
                Some(typmod) => info.with_type_modifier(typmod),
                None => info,
            }
        })
        .collect())
}

/// `pg_type.typlen` of a type: its fixed width, or -1 for variable-width ones.
fn type_size(ty: &Type) -> i16 {
    match *ty {
        Type::BOOL | Type::CHAR => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::FLOAT4 | Type::DATE | Type::OID => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::TIME => 8,
        Type::INTERVAL => 16,
        Type::UUID => 16,
        _ => -1,
    }
}

/// The PostgreSQL type reported for a parameter DataFusion typed `data_type`
/// (untyped parameters are text, as in PostgreSQL).
pub fn param_type(data_type: Option<&DataType>) -> Type {
    match data_type {
        Some(dt) => arrow_pg::datatypes::into_pg_type(dt).unwrap_or(Type::TEXT),
        None => Type::TEXT,
    }
}

/// DataRows of `batches`, encoded one batch at a time as the client reads.
fn row_stream(
    fields: Arc<Vec<FieldInfo>>,
    batches: BatchStream,
) -> impl futures::Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    batches
        .map(move |batch| {
            let rows: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> = match batch {
                Ok(batch) => {
                    let batch = super::pgtext::render(batch, &fields);
                    Box::new(super::rows::encode_batch(fields.clone(), batch))
                }
                Err(e) => Box::new(std::iter::once(Err(to_pgwire(e)))),
            };
            stream::iter(rows)
        })
        .flatten()
}

/// Turns a statement's output into the pgwire response, encoding rows in `format`.
pub fn response(output: Output, format: &Format) -> PgWireResult<Response> {
    Ok(match output {
        Output::Rows { schema, stream } => {
            let fields = Arc::new(fields(&schema, format)?);
            Response::Query(QueryResponse::new(
                fields.clone(),
                row_stream(fields, stream),
            ))
        }
        Output::Command(tag) | Output::ParameterChanged { tag, .. } => {
            Response::Execution(Tag::new(&tag))
        }
        Output::TransactionStart(tag) => Response::TransactionStart(Tag::new(&tag)),
        Output::TransactionEnd(tag) => Response::TransactionEnd(Tag::new(&tag)),
        Output::CopyIn { columns } => {
            Response::CopyIn(CopyResponse::new(0, columns, stream::empty()))
        }
        // Sent by the caller, which owns the client (super::copy).
        Output::CopyOut { .. } => {
            return Err(to_pgwire(Error::internal(
                "COPY TO output reached the encoder",
            )));
        }
    })
}
