//! Who may connect: users and passwords from configuration, checked with
//! SCRAM-SHA-256 (the default), md5 or a cleartext password — or no check at
//! all (trust), which the server allows only when told to or on loopback.
//!
//! Every failure, unknown user included, gets the same 28P01 message, so a
//! client learns nothing about which users exist.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::PgWireResult;

use crate::error::{Error, ErrorKind, Result};
use crate::session::Role;

/// How passwords are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Trust,
    /// Cleartext password (use with TLS).
    Password,
    Md5,
    ScramSha256,
}

impl FromStr for AuthMethod {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "trust" => Ok(AuthMethod::Trust),
            "password" => Ok(AuthMethod::Password),
            "md5" => Ok(AuthMethod::Md5),
            "scram-sha-256" => Ok(AuthMethod::ScramSha256),
            other => Err(format!(
                "unknown authentication method {other:?} (use scram-sha-256, md5, password or trust)"
            )),
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Password => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
        })
    }
}

/// The users who may log in, with their passwords.
#[derive(Clone, Default)]
pub struct Users(HashMap<String, (String, Role)>);

impl fmt::Debug for Users {
    // Names only: passwords never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Users {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn password(&self, user: &str) -> Option<&str> {
        self.0.get(user).map(|(password, _)| password.as_str())
    }

    /// The user's role; configured users without one, and everyone when
    /// no users are configured (trust), are admins.
    pub fn role(&self, user: &str) -> Role {
        self.0.get(user).map(|(_, role)| *role).unwrap_or_default()
    }

    /// Adds `name:password` or `name/role:password`.
    pub fn add(&mut self, spec: &str) -> Result<()> {
        let (name, password) = spec.split_once(':').ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidParameterValue,
                "a user is given as NAME:PASSWORD or NAME/ROLE:PASSWORD",
            )
        })?;
        let (name, role) = match name.split_once('/') {
            Some((name, role)) => (name, role.parse::<Role>()?),
            None => (name, Role::Admin),
        };
        if name.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "a user name cannot be empty",
            ));
        }
        self.0
            .insert(name.to_string(), (password.to_string(), role));
        Ok(())
    }

    /// Reads a file of `name:password` lines (blank lines and `#` comments
    /// are skipped).
    pub fn load(&mut self, path: &std::path::Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::InvalidParameterValue,
                format!("cannot read the users file {}: {e}", path.display()),
            )
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            self.add(line)
                .map_err(|e| e.context(format!("{} line {}", path.display(), n + 1)))?;
        }
        Ok(())
    }
}

/// Authentication as configured for the server.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub method: AuthMethod,
    pub users: Arc<Users>,
}

impl AuthConfig {
    pub fn trust() -> AuthConfig {
        AuthConfig {
            method: AuthMethod::Trust,
            users: Arc::new(Users::default()),
        }
    }

    /// The SCRAM verifier source, when SCRAM is the method.
    pub(super) fn scram(&self, tls_cert_pem: Option<&[u8]>) -> Result<Option<ScramAuth>> {
        if self.method != AuthMethod::ScramSha256 {
            return Ok(None);
        }
        let mut scram = ScramAuth::new(Arc::new(ScramSource(self.users.clone())));
        if let Some(pem) = tls_cert_pem {
            // Lets clients bind the exchange to the TLS channel (SCRAM-SHA-256-PLUS).
            scram.configure_certificate(pem).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!("the TLS certificate cannot be used for SCRAM channel binding: {e}"),
                )
            })?;
        }
        Ok(Some(scram))
    }

    /// Whether `password`, sent in cleartext, is `user`'s.
    pub(super) fn check_cleartext(&self, user: &str, password: &str) -> bool {
        self.users.password(user) == Some(password)
    }

    /// Whether the md5 answer to `salt` is `user`'s.
    pub(super) fn check_md5(&self, user: &str, answer: &str, salt: &[u8]) -> bool {
        self.users.password(user).is_some_and(|password| {
            pgwire::api::auth::md5pass::hash_md5_password(user, password, salt) == answer
        })
    }
}

/// SCRAM needs the salted password; it is derived from the configured one
/// with a fresh salt per login. An unknown user gets a random one, so the
/// exchange fails the same way a wrong password does.
#[derive(Debug)]
struct ScramSource(Arc<Users>);

#[async_trait]
impl AuthSource for ScramSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let salt = uuid::Uuid::new_v4().as_bytes().to_vec();
        let random = uuid::Uuid::new_v4().to_string();
        let password = login
            .user()
            .and_then(|u| self.0.password(u))
            .unwrap_or(&random);
        let salted = gen_salted_password(password, &salt, 4096);
        Ok(Password::new(Some(salt), salted))
    }
}

pub(super) fn authentication_failed(user: &str) -> Error {
    Error::new(
        ErrorKind::InvalidPassword,
        format!("password authentication failed for user \"{user}\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_methods() {
        let mut users = Users::default();
        users.add("alice:s3cret:with:colons").unwrap();
        assert_eq!(users.password("alice"), Some("s3cret:with:colons"));
        assert!(users.add("nobody").is_err());
        assert!(!format!("{users:?}").contains("s3cret"));
        assert_eq!(
            "SCRAM-SHA-256".parse::<AuthMethod>(),
            Ok(AuthMethod::ScramSha256)
        );
        assert!("kerberos".parse::<AuthMethod>().is_err());
        let config = AuthConfig {
            method: AuthMethod::Md5,
            users: Arc::new(users),
        };
        let answer =
            pgwire::api::auth::md5pass::hash_md5_password("alice", "s3cret:with:colons", b"salt");
        assert!(config.check_md5("alice", &answer, b"salt"));
        assert!(!config.check_md5("alice", &answer, b"tlas"));
        assert!(!config.check_md5("bob", &answer, b"salt"));
        assert!(!config.check_cleartext("alice", "wrong"));
    }
}
