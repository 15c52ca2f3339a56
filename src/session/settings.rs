//! Session parameters (SET / SHOW), with PostgreSQL's names and defaults.

use std::collections::BTreeMap;

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
    ("transaction_isolation", "read committed", false),
    ("default_transaction_isolation", "read committed", false),
    ("max_identifier_length", "63", false),
    ("lc_messages", "C", false),
    ("lc_monetary", "C", false),
    ("lc_numeric", "C", false),
    ("lc_time", "C", false),
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
            if s.values.contains_key(&key) && !READ_ONLY.contains(&key.as_str()) {
                s.values.insert(key, v.clone());
            }
        }
        s
    }

    pub fn get(&self, name: &str) -> Result<&str> {
        let key = name.to_ascii_lowercase();
        let key = if key == "time zone" {
            "timezone".to_string()
        } else {
            key
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
        let value = if value.eq_ignore_ascii_case("default") {
            DEFAULTS
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, v, _)| v.to_string())
                .unwrap_or_default()
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
        assert!(
            s.reported()
                .iter()
                .any(|(k, v)| k == "TimeZone" && v == "UTC")
        );
    }
}
