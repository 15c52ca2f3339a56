//! Every column type round-trips, NULLs included, in text (simple protocol)
//! and binary (extended protocol, tokio-postgres's default) formats, with the
//! type OIDs drivers decode by.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use tokio_postgres::types::Type;

use crate::common::{TestServer, rows, scalar, sqlstate};

const DDL: &str = "CREATE TABLE typed (
    i2 SMALLINT, i4 INT, i8 BIGINT, f4 REAL, f8 DOUBLE PRECISION, n NUMERIC(10,3),
    v VARCHAR(20), t TEXT, s STRING, b BOOLEAN, d DATE, ts TIMESTAMP)";

#[tokio::test]
async fn text_and_binary_round_trip() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(DDL).await.unwrap();
    c.batch_execute(
        "INSERT INTO typed VALUES
         (-32768, -2147483648, -9223372036854775808, 1.5, -2.25, -1234567.125, 'héllo', 'a''b', 'Ω', true, '2024-02-29', '2024-02-29 23:59:59.123456'),
         (32767, 2147483647, 9223372036854775807, 0.1, 1e300, 0.001, '', 'x', 's', false, '1970-01-01', '1970-01-01 00:00:00'),
         (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .await
    .unwrap();

    // Text format, as psql shows it and PostgreSQL prints it.
    let text = rows(&c, "SELECT * FROM typed ORDER BY i2 NULLS LAST").await;
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        text[0],
        vec![
            s("-32768"),
            s("-2147483648"),
            s("-9223372036854775808"),
            s("1.5"),
            s("-2.25"),
            s("-1234567.125"),
            s("héllo"),
            s("a'b"),
            s("Ω"),
            s("t"),
            s("2024-02-29"),
            s("2024-02-29 23:59:59.123456")
        ]
    );
    assert_eq!(
        text[1],
        vec![
            s("32767"),
            s("2147483647"),
            s("9223372036854775807"),
            s("0.1"),
            s("1e+300"),
            s("0.001"),
            s(""),
            s("x"),
            s("s"),
            s("f"),
            s("1970-01-01"),
            s("1970-01-01 00:00:00")
        ]
    );
    assert_eq!(text[2], vec![None; 12]);

    // Binary format, decoded by the driver's types (and so checking the OIDs).
    let stmt = c
        .prepare("SELECT * FROM typed ORDER BY i2 NULLS LAST")
        .await
        .unwrap();
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        vec![
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::NUMERIC,
            Type::VARCHAR,
            Type::TEXT,
            Type::TEXT,
            Type::BOOL,
            Type::DATE,
            Type::TIMESTAMP
        ]
    );
    let r = c.query(&stmt, &[]).await.unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].get::<_, i16>(0), i16::MIN);
    assert_eq!(r[0].get::<_, i32>(1), i32::MIN);
    assert_eq!(r[0].get::<_, i64>(2), i64::MIN);
    assert_eq!(r[0].get::<_, f32>(3), 1.5);
    assert_eq!(r[0].get::<_, f64>(4), -2.25);
    assert_eq!(
        r[0].get::<_, Decimal>(5),
        "-1234567.125".parse::<Decimal>().unwrap()
    );
    assert_eq!(r[0].get::<_, String>(6), "héllo");
    assert_eq!(r[0].get::<_, String>(7), "a'b");
    assert!(r[0].get::<_, bool>(9));
    assert_eq!(
        r[0].get::<_, NaiveDate>(10),
        NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
    );
    assert_eq!(
        r[0].get::<_, NaiveDateTime>(11),
        NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 123456)
            .unwrap()
    );
    assert_eq!(r[1].get::<_, i64>(2), i64::MAX);
    assert_eq!(r[1].get::<_, f64>(4), 1e300);
    assert!(!r[1].get::<_, bool>(9));
    assert_eq!(r[2].get::<_, Option<i16>>(0), None);
    assert_eq!(r[2].get::<_, Option<f64>>(4), None);
    assert_eq!(r[2].get::<_, Option<String>>(6), None);
    assert_eq!(r[2].get::<_, Option<bool>>(9), None);
    assert_eq!(r[2].get::<_, Option<NaiveDate>>(10), None);
    assert_eq!(r[2].get::<_, Option<i32>>(1), None);
    assert_eq!(r[2].get::<_, Option<Decimal>>(5), None);
    assert_eq!(r[2].get::<_, Option<NaiveDateTime>>(11), None);
}

#[tokio::test]
async fn binary_parameters_of_every_type() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(DDL).await.unwrap();
    let stmt = c
        .prepare("INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
        .await
        .unwrap();
    // The server inferred every parameter's type from the table.
    assert_eq!(
        stmt.params(),
        &[
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::NUMERIC,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::BOOL,
            Type::DATE,
            Type::TIMESTAMP
        ]
    );
    let ts = NaiveDate::from_ymd_opt(2001, 9, 9)
        .unwrap()
        .and_hms_micro_opt(1, 46, 40, 5)
        .unwrap();
    let n: Decimal = "42.125".parse().unwrap();
    c.execute(
        &stmt,
        &[
            &7i16,
            &8i32,
            &9i64,
            &1.25f32,
            &2.5f64,
            &n,
            &"v",
            &"t",
            &"s",
            &true,
            &NaiveDate::from_ymd_opt(2001, 9, 9).unwrap(),
            &ts,
        ],
    )
    .await
    .unwrap();
    let none: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
        &None::<i16>,
        &None::<i32>,
        &None::<i64>,
        &None::<f32>,
        &None::<f64>,
        &None::<Decimal>,
        &None::<String>,
        &None::<String>,
        &None::<String>,
        &None::<bool>,
        &None::<NaiveDate>,
        &None::<NaiveDateTime>,
    ];
    c.execute(&stmt, &none).await.unwrap();
    let r = c
        .query(
            "SELECT i2, i4, i8, f4, f8, n, v, b, d, ts FROM typed WHERE i4 = $1",
            &[&8i32],
        )
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].get::<_, i16>(0), 7);
    assert_eq!(r[0].get::<_, i64>(2), 9);
    assert_eq!(r[0].get::<_, Decimal>(5), n);
    assert_eq!(r[0].get::<_, String>(6), "v");
    assert_eq!(r[0].get::<_, NaiveDateTime>(9), ts);
    assert_eq!(
        rows(&c, "SELECT count(*), count(i2) FROM typed").await,
        vec![vec![Some("2".into()), Some("1".into())]]
    );
}

/// `timestamptz` holds an instant: text with any offset is read into it,
/// it is written back in UTC (fusegate's TimeZone) with PostgreSQL's `+00`,
/// and drivers get it as TIMESTAMPTZ in binary; `now()` is one too.
#[tokio::test]
async fn timestamptz_is_an_instant_in_text_and_binary() {
    use chrono::{DateTime, TimeZone, Utc};
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE e (id INT, at TIMESTAMPTZ, local TIMESTAMP);
         INSERT INTO e VALUES (1, '2024-01-01 12:00:00+02', '2024-01-01 12:00:00+02'),
                              (2, '2024-06-30 23:30-03:30', '2024-06-30 23:30'),
                              (3, NULL, NULL)",
    )
    .await
    .unwrap();
    // Binary: a driver's DateTime<Utc> in and out, typed TIMESTAMPTZ.
    let stmt = c
        .prepare("INSERT INTO e (id, at) VALUES ($1, $2)")
        .await
        .unwrap();
    assert_eq!(stmt.params()[1], Type::TIMESTAMPTZ);
    let noon = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
    c.execute(&stmt, &[&4i32, &noon]).await.unwrap();
    let r = c
        .query(
            "SELECT at, now() FROM e WHERE id IN (1, 4) ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r[0].columns()[0].type_(), &Type::TIMESTAMPTZ);
    assert_eq!(r[0].columns()[1].type_(), &Type::TIMESTAMPTZ);
    let first: DateTime<Utc> = r[0].get(0);
    assert_eq!(first, Utc.with_ymd_and_hms(2024, 1, 1, 10, 0, 0).unwrap());
    assert_eq!(r[1].get::<_, DateTime<Utc>>(0), noon);
    // Text: PostgreSQL's output; a timestamp ignores the offset it is given.
    assert_eq!(
        rows(&c, "SELECT id, at, local, at::text FROM e ORDER BY id").await,
        vec![
            [
                "1",
                "2024-01-01 10:00:00+00",
                "2024-01-01 12:00:00",
                "2024-01-01 10:00:00+00"
            ]
            .map(|v| Some(v.to_string()))
            .to_vec(),
            [
                "2",
                "2024-07-01 03:00:00+00",
                "2024-06-30 23:30:00",
                "2024-07-01 03:00:00+00"
            ]
            .map(|v| Some(v.to_string()))
            .to_vec(),
            vec![Some("3".into()), None, None, None],
            vec![
                Some("4".into()),
                Some("2025-03-01 12:00:00+00".into()),
                None,
                Some("2025-03-01 12:00:00+00".into())
            ],
        ]
    );
    // Comparisons between zones compare instants.
    assert_eq!(
        rows(
            &c,
            "SELECT id FROM e WHERE at > '2024-07-01 04:59:59+02' ORDER BY id"
        )
        .await,
        vec![vec![Some("2".into())], vec![Some("4".into())]]
    );
    assert_eq!(
        rows(&c, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'e'::regclass AND attname = 'at'").await,
        vec![vec![Some("timestamp with time zone".into())]]
    );
    // The session's zone is UTC and stays so.
    c.batch_execute("SET TIME ZONE 'UTC'; SET TimeZone = DEFAULT")
        .await
        .unwrap();
    let err = c
        .batch_execute("SET TimeZone = 'Europe/Paris'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "0A000", "{err:?}");
    assert_eq!(scalar(&c, "SHOW TimeZone").await, "UTC");
}

#[tokio::test]
async fn literals_are_typed_as_postgresql_types_them() {
    let server = TestServer::start();
    let c = server.client().await;
    // Drivers decode by the type sent: `1` is an int4, `2147483648` an int8,
    // `0.1` a numeric (exact: 0.1 + 0.2 is 0.3), a float stays a float8.
    let r = c
        .query_one("SELECT 1, 2147483648, 0.1 + 0.2, 1e3, 0.5::float8 * 2", &[])
        .await
        .unwrap();
    let types: Vec<Type> = r.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [
            Type::INT4,
            Type::INT8,
            Type::NUMERIC,
            Type::NUMERIC,
            Type::FLOAT8
        ]
    );
    assert_eq!(r.get::<_, i32>(0), 1);
    assert_eq!(r.get::<_, i64>(1), 2147483648);
    assert_eq!(r.get::<_, Decimal>(2), "0.3".parse::<Decimal>().unwrap());
    assert_eq!(r.get::<_, Decimal>(3), Decimal::from(1000));
    assert_eq!(r.get::<_, f64>(4), 1.0);
    assert_eq!(scalar(&c, "SELECT 0.1 + 0.2").await, "0.3");

    c.batch_execute(
        "CREATE TABLE lit (i INT, b BIGINT, f DOUBLE PRECISION);
         INSERT INTO lit VALUES (2147483647, 2147483647, 1e300), (1, 1, 'NaN'), (2, 2, 0.25)",
    )
    .await
    .unwrap();
    // integer + 1 is an integer, and overflows as one; bigint + 1 does not.
    let err = c.query("SELECT i + 1 FROM lit", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "22003", "{err:?}");
    let r = c
        .query_one("SELECT b + 1 FROM lit WHERE i = 2147483647", &[])
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 2147483648);
    // A float compared with a numeric is compared as a float: 1e300 and NaN
    // are not squeezed into a decimal.
    assert_eq!(
        rows(&c, "SELECT i FROM lit WHERE f > 0.5 ORDER BY i").await,
        [
            vec![Some("1".to_string())],
            vec![Some("2147483647".to_string())]
        ]
    );
    assert_eq!(
        scalar(&c, "SELECT coalesce(f, 0.5) FROM lit WHERE i = 2").await,
        "0.25"
    );
    // A bound parameter keeps the type the statement gave it.
    let stmt = c.prepare("SELECT $1 + 1").await.unwrap();
    assert_eq!(stmt.params(), &[Type::INT8]);
    let r = c.query_one(&stmt, &[&41i64]).await.unwrap();
    assert_eq!(r.get::<_, i64>(0), 42);
}
