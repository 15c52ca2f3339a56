//! Who may connect: users and passwords from configuration, checked with
//! SCRAM-SHA-256 (the default), md5 or a cleartext password — or no check at
//! all (trust), which the server allows only when told to or on loopback.
//!
//! A user's password may be given as a SCRAM verifier (PostgreSQL's
//! `SCRAM-SHA-256$...` form, from `fusegate hash-password` or `pg_authid`),
//! so no password need be written down: such users log in with SCRAM or a
//! cleartext password, not md5, as in PostgreSQL.
//!
//! Every failure, unknown user included, gets the same 28P01 message, so a
//! client learns nothing about which users exist.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::scram::{self, Verifier};
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

/// A configured user's credentials.
#[derive(Clone)]
struct User {
    /// The password, when it was configured in cleartext (md5 needs it).
    password: Option<String>,
    verifier: Verifier,
    role: Role,
}

/// The users who may log in, with their credentials.
#[derive(Clone, Default)]
pub struct Users(HashMap<String, User>);

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

    /// The user's SCRAM verifier.
    pub fn verifier(&self, user: &str) -> Option<&Verifier> {
        self.0.get(user).map(|u| &u.verifier)
    }

    /// The user's role; configured users without one, and everyone when
    /// no users are configured (trust), are admins.
    pub fn role(&self, user: &str) -> Role {
        self.0.get(user).map(|u| u.role).unwrap_or_default()
    }

    /// Adds `name:password` or `name/role:password`; the password may be a
    /// SCRAM verifier.
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
        let user = match Verifier::parse(password) {
            Some(verifier) => User {
                password: None,
                verifier,
                role,
            },
            None if password.starts_with("SCRAM-SHA-256$") => {
                return Err(Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!("the SCRAM verifier of user \"{name}\" is malformed"),
                ));
            }
            None => User {
                password: Some(password.to_string()),
                verifier: Verifier::from_password(password),
                role,
            },
        };
        self.0.insert(name.to_string(), user);
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
    /// Seeds the mock SCRAM salts of unknown users (fixed per server run).
    mock_secret: Arc<Vec<u8>>,
}

impl AuthConfig {
    pub fn new(method: AuthMethod, users: Users) -> AuthConfig {
        AuthConfig {
            method,
            users: Arc::new(users),
            mock_secret: Arc::new(scram::random_bytes(32)),
        }
    }

    pub fn trust() -> AuthConfig {
        AuthConfig::new(AuthMethod::Trust, Users::default())
    }

    /// The verifier a SCRAM exchange with `user` runs against: an unknown
    /// user gets a mock one no password matches, so the exchange fails the
    /// same way a wrong password does.
    pub(super) fn scram_verifier(&self, user: &str) -> Verifier {
        match self.users.verifier(user) {
            Some(v) => v.clone(),
            None => Verifier::mock(user, &self.mock_secret),
        }
    }

    /// Whether `password`, sent in cleartext, is `user`'s.
    pub(super) fn check_cleartext(&self, user: &str, password: &str) -> bool {
        self.users
            .verifier(user)
            .is_some_and(|v| v.matches_password(password))
    }

    /// Whether the md5 answer to `salt` is `user`'s (never, for a user
    /// configured with a SCRAM verifier).
    pub(super) fn check_md5(&self, user: &str, answer: &str, salt: &[u8]) -> bool {
        let password = self.users.0.get(user).and_then(|u| u.password.as_deref());
        password.is_some_and(|password| {
            pgwire::api::auth::md5pass::hash_md5_password(user, password, salt) == answer
        })
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
        assert!(
            users
                .verifier("alice")
                .unwrap()
                .matches_password("s3cret:with:colons")
        );
        assert!(users.add("nobody").is_err());
        let hashed = Verifier::from_password("pencil").to_string();
        users.add(&format!("carol/readonly:{hashed}")).unwrap();
        assert!(users.add("dave:SCRAM-SHA-256$4096:bad").is_err());
        assert!(!format!("{users:?}").contains("s3cret"));
        assert_eq!(
            "SCRAM-SHA-256".parse::<AuthMethod>(),
            Ok(AuthMethod::ScramSha256)
        );
        assert!("kerberos".parse::<AuthMethod>().is_err());
        let config = AuthConfig::new(AuthMethod::Md5, users);
        let answer =
            pgwire::api::auth::md5pass::hash_md5_password("alice", "s3cret:with:colons", b"salt");
        assert!(config.check_md5("alice", &answer, b"salt"));
        assert!(!config.check_md5("alice", &answer, b"tlas"));
        assert!(!config.check_md5("bob", &answer, b"salt"));
        assert!(!config.check_cleartext("alice", "wrong"));
        assert!(config.check_cleartext("alice", "s3cret:with:colons"));
        // A hashed credential logs in with a cleartext password, never md5.
        assert!(config.check_cleartext("carol", "pencil"));
        let carol = pgwire::api::auth::md5pass::hash_md5_password("carol", "pencil", b"salt");
        assert!(!config.check_md5("carol", &carol, b"salt"));
        assert_eq!(config.users.role("carol"), Role::ReadOnly);
    }
}
