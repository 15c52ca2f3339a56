//! Roles: what a user may run. `admin` may run everything; `readwrite`
//! everything but the operations that destroy history or reach around the
//! table (VACUUM, PURGE, `CALL system$...` such as fuse_amend); `readonly`
//! only reads (queries, SHOW, COPY TO, session and transaction control).

use std::fmt;
use std::str::FromStr;

use crate::bail;
use crate::error::{Error, ErrorKind, Result};
use crate::sql::{Privilege, Statement};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Admin,
    ReadWrite,
    ReadOnly,
}

impl Role {
    fn allows(self, needed: Privilege) -> bool {
        match self {
            Role::Admin => true,
            Role::ReadWrite => needed != Privilege::Admin,
            Role::ReadOnly => needed == Privilege::Read,
        }
    }

    /// 42501 unless the role may run `statement`.
    pub fn check(self, user: &str, statement: &Statement) -> Result<()> {
        let needed = statement.privilege();
        if !self.allows(needed) {
            bail!(
                InsufficientPrivilege,
                "permission denied: user \"{user}\" (role {self}) may not run {}",
                statement.command()
            );
        }
        Ok(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::ReadWrite => "readwrite",
            Role::ReadOnly => "readonly",
        })
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "readwrite" | "read-write" => Ok(Role::ReadWrite),
            "readonly" | "read-only" => Ok(Role::ReadOnly),
            other => Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("unknown role \"{other}\" (use admin, readwrite or readonly)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(role: Role, sql: &str) -> std::result::Result<(), String> {
        let statement = crate::sql::parse(sql).unwrap().pop().unwrap();
        role.check("u", &statement)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn roles_allow_what_they_name() {
        for sql in [
            "SELECT 1",
            "SHOW TABLES",
            "BEGIN",
            "SET search_path = x",
            "COPY t TO STDOUT",
        ] {
            assert_eq!(check(Role::ReadOnly, sql), Ok(()), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "CREATE TABLE t (a INT)",
            "DROP TABLE t",
            "ALTER TABLE t ADD COLUMN b INT",
            "COPY t FROM STDIN",
            "OPTIMIZE TABLE t COMPACT",
            "CREATE DATABASE d",
        ] {
            assert!(check(Role::ReadOnly, sql).is_err(), "{sql}");
            assert_eq!(check(Role::ReadWrite, sql), Ok(()), "{sql}");
        }
        for sql in [
            "VACUUM TABLE t",
            "OPTIMIZE TABLE t PURGE",
            "CALL system$fuse_amend('default', 't')",
            "VACUUM DROP TABLE",
        ] {
            assert!(check(Role::ReadWrite, sql).is_err(), "{sql}");
            assert_eq!(check(Role::Admin, sql), Ok(()), "{sql}");
        }
        assert_eq!(
            check(Role::ReadOnly, "DELETE FROM t").unwrap_err(),
            "permission denied: user \"u\" (role readonly) may not run DELETE"
        );
    }
}
