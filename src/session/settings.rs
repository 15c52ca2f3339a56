//! Session parameters (SET / SHOW), with PostgreSQL's names and defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

pub use crate::SERVER_VERSION;

/// Parameters every session starts with: (name, default, reported to the client
/// in ParameterStatus).
const DEFAULTS: &[(&str, &str, bool)] = &[
    ("server_version", SERVER_VERSION, true),
    ("server_version_num", "160006", false),
    ("server_encoding", "UTF8", true),
    ("client_encoding", "UTF8", true),
    ("datestyle", "ISO, MDY", true),
    ("intervalstyle", "postgres", true),
    ("timezone", "UTC", true),
    ("integer_datetimes", "on", true),
    ("standard_conforming_strings", "on", true),
    ("is_superuser", "on", true),
    ("default_transaction_read_only", "off", true),
    ("in_hot_standby", "off", true),
    ("application_name", "", true),
    ("search_path", "\"$user\", public", false),
    ("extra_float_digits", "1", false),
    ("statement_timeout", "0", false),
    ("idle_session_timeout", "0", false),
    ("idle_in_transaction_session_timeout", "0", false),
    ("transaction_isolation", "read committed", false),
    ("default_transaction_isolation", "read committed", false),
    ("max_identifier_length", "63", false),
    ("lc_messages", "C", false),
    ("lc_monetary", "C", false),
    ("lc_numeric", "C", false),
    ("lc_time", "C", false),
    ("default_table_access_method", "heap", false),
];

/// PostgreSQL spells some names in mixed case in ParameterStatus.
fn reported_name(name: &str) -> &str {
    match name {
        "datestyle" => "DateStyle",
        "intervalstyle" => "IntervalStyle",
        "timezone" => "TimeZone",
        other => other,
    }
}

/// Parameters holding a duration (milliseconds without a unit).
const TIMEOUTS: &[&str] = &[
    "statement_timeout",
    "idle_session_timeout",
    "idle_in_transaction_session_timeout",
];

/// Parameters that cannot be SET.
const READ_ONLY: &[&str] = &[
    "server_version",
    "server_version_num",
    "server_encoding",
    "integer_datetimes",
    "is_superuser",
    "in_hot_standby",
    "max_identifier_length",
];

#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            values: DEFAULTS
                .iter()
                .map(|(k, v, _)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl Settings {
    /// Settings with the startup packet's parameters applied (application_name, ...).
    pub fn from_startup<'a>(
        params: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Settings {
        let mut s = Settings::default();
        for (k, v) in params {
            let key = k.to_ascii_lowercase();
            // A driver sends its own zone (PgJDBC: the JVM's); fusegate
            // stays in UTC and its ParameterStatus says so.
            if key == "timezone" && !is_utc(v) {
                continue;
            }
            if s.values.contains_key(&key) && !READ_ONLY.contains(&key.as_str()) {
                s.values.insert(key, v.clone());
            }
        }
        s
    }

    /// Every parameter by its lower-case name.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    pub fn get(&self, name: &str) -> Result<&str> {
        let key = name.to_ascii_lowercase();
        let key = match key.as_str() {
            "time zone" => "timezone".to_string(),
            "transaction isolation level" => "transaction_isolation".to_string(),
            _ => key,
        };
        self.values.get(&key).map(String::as_str).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedObject,
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })
    }

    /// Sets a parameter. Returns the (name, value) to report to the client when
    /// PostgreSQL reports it (ParameterStatus), else None.
    pub fn set(&mut self, name: &str, value: &str) -> Result<Option<(String, String)>> {
        let key = name.to_ascii_lowercase();
        if READ_ONLY.contains(&key.as_str()) {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("parameter \"{name}\" cannot be changed"),
            ));
        }
        // Unknown parameters with a dot are custom ("myapp.x"), as in PostgreSQL.
        if !self.values.contains_key(&key) && !key.contains('.') {
            return Err(Error::new(
                ErrorKind::UndefinedObject,
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        }
        // SET TIME ZONE LOCAL is PostgreSQL's spelling of DEFAULT.
        let resets = value.eq_ignore_ascii_case("default")
            || (key == "timezone" && value.eq_ignore_ascii_case("local"));
        if key == "timezone" && !resets && !is_utc(value) {
            return Err(Error::new(
                ErrorKind::FeatureNotSupported,
                format!("fusegate's TimeZone is UTC; it cannot be set to \"{value}\""),
            )
            .with_hint(
                "timestamptz values are read without an offset and written in UTC; \
                 give offsets in the text (2024-01-01 12:00:00+02) or convert in the client.",
            ));
        }
        let value = if resets {
            DEFAULTS
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, v, _)| v.to_string())
                .unwrap_or_default()
        } else if TIMEOUTS.contains(&key.as_str()) {
            let ms = parse_milliseconds(value).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!("invalid value for parameter \"{name}\": \"{value}\""),
                )
                .with_hint("Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".")
            })?;
            show_milliseconds(ms)
        } else {
            value.to_string()
        };
        self.values.insert(key.clone(), value.clone());
        let reported = DEFAULTS.iter().any(|(k, _, r)| *k == key && *r);
        Ok(reported.then(|| (reported_name(&key).to_string(), value)))
    }

    /// The parameters sent in ParameterStatus at startup.
    pub fn reported(&self) -> Vec<(String, String)> {
        DEFAULTS
            .iter()
            .filter(|(_, _, r)| *r)
            .filter_map(|(k, _, _)| {
                self.values
                    .get(*k)
                    .map(|v| (reported_name(k).to_string(), v.clone()))
            })
            .collect()
    }

    pub fn all(&self) -> impl Iterator<Item = (&String, &String)> {
        self.values.iter()
    }

    /// RESET ALL: every parameter back to the session's start (defaults and
    /// what the client set in its startup packet). Custom parameters go.
    /// (Unlike PostgreSQL, no ParameterStatus follows for reported ones.)
    pub fn reset_all(&mut self, startup: &Settings) {
        self.values = startup.values.clone();
    }

    /// SHOW ALL: every parameter with its value.
    pub fn show_all(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(k, v)| (reported_name(k).to_string(), v.clone()))
            .collect()
    }

    /// The statement_timeout in force (None: 0, no limit).
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.duration("statement_timeout")
    }

    /// How long a session may wait for its client's next statement, outside
    /// or inside a transaction block (None: 0, no limit).
    pub fn idle_timeout(&self, in_transaction: bool) -> Option<Duration> {
        self.duration(if in_transaction {
            "idle_in_transaction_session_timeout"
        } else {
            "idle_session_timeout"
        })
    }

    fn duration(&self, name: &str) -> Option<Duration> {
        let ms = self.values.get(name).and_then(|v| parse_milliseconds(v))?;
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

/// Whether a TimeZone value names UTC (`UTC`, `Etc/UTC`, `GMT`, `Z`,
/// `+00:00`, `0`...).
fn is_utc(zone: &str) -> bool {
    let zone = zone.trim().to_ascii_lowercase();
    let zone = zone.strip_prefix("etc/").unwrap_or(&zone);
    let offset = zone.trim_start_matches(['+', '-']);
    matches!(
        zone,
        "utc" | "uct" | "gmt" | "z" | "zulu" | "universal" | "greenwich"
    ) || (!offset.is_empty() && offset.chars().all(|c| c == '0' || c == ':'))
}

/// A time setting in milliseconds: a number with an optional unit (`us`,
/// `ms`, `s`, `min`, `h`, `d`; none means ms), as PostgreSQL accepts.
pub fn parse_milliseconds(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = (number * factor).round();
    (ms >= 0.0 && ms <= i32::MAX as f64).then_some(ms as u64)
}

/// Milliseconds as SHOW prints them: in the largest unit that divides them.
fn show_milliseconds(ms: u64) -> String {
    if ms == 0 {
        return "0".to_string();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("min", 60_000),
        ("s", 1000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_show_and_reporting() {
        let mut s = Settings::default();
        assert_eq!(s.get("DateStyle").unwrap(), "ISO, MDY");
        assert_eq!(
            s.set("application_name", "psql").unwrap(),
            Some(("application_name".into(), "psql".into()))
        );
        assert_eq!(s.set("extra_float_digits", "3").unwrap(), None);
        assert_eq!(s.get("extra_float_digits").unwrap(), "3");
        assert_eq!(s.set("nope", "1").unwrap_err().sqlstate(), "42704");
        assert!(s.set("myapp.flag", "1").is_ok());
        assert_eq!(
            s.set("server_version", "1").unwrap_err().sqlstate(),
            "22023"
        );
        assert_eq!(s.statement_timeout(), None);
        s.set("statement_timeout", "5000").unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "5s");
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(5)));
        s.set("statement_timeout", "1500ms").unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "1500ms");
        s.set("statement_timeout", "2min").unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "2min");
        assert_eq!(
            s.set("statement_timeout", "soon").unwrap_err().sqlstate(),
            "22023"
        );
        assert!(
            s.reported()
                .iter()
                .any(|(k, v)| k == "TimeZone" && v == "UTC")
        );
        for utc in ["UTC", "Etc/UTC", "GMT", "+00:00", "0", "default", "LOCAL"] {
            assert!(s.set("TimeZone", utc).is_ok(), "{utc}");
        }
        assert_eq!(
            s.set("timezone", "Europe/Paris").unwrap_err().sqlstate(),
            "0A000"
        );
        assert_eq!(s.set("timezone", "+02").unwrap_err().sqlstate(), "0A000");
        let (zone, key) = ("America/New_York".to_string(), "TimeZone".to_string());
        let started = Settings::from_startup([(&key, &zone)]);
        assert_eq!(started.get("timezone").unwrap(), "UTC");
    }
}
