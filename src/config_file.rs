//! `--config FILE`: a TOML file with the same settings as the flags, named
//! as the flags are (`data-dir = "/var/lib/fusegate"`, `user = ["ada:pw"]`).
//! A flag on the command line or its environment variable wins over the
//! file, which wins over the default. Part of the binary, not the library.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

/// The command line with the file's settings added for every flag neither
/// the command line nor the environment set.
pub fn merge(
    command: &Command,
    matches: &ArgMatches,
    argv: Vec<OsString>,
    path: &Path,
) -> Result<Vec<OsString>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    // The file's flags go right after the program name, before any
    // subcommand, where top-level flags belong.
    let mut added: Vec<OsString> = Vec::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
            .ok_or_else(|| {
                let known: Vec<_> = command
                    .get_arguments()
                    .filter_map(|a| a.get_long())
                    .filter(|l| !matches!(*l, "config" | "help" | "version"))
                    .collect();
                format!(
                    "config file {}: unknown setting `{key}` (known: {})",
                    path.display(),
                    known.join(", ")
                )
            })?;
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let values = match value {
            toml::Value::Array(items) => items,
            single => vec![single],
        };
        for v in values {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "config file {}: `{key}` must be a string, number or list of them, not {}",
                        path.display(),
                        other.type_str()
                    ));
                }
            };
            added.push(format!("--{long}").into());
            added.push(text.into());
        }
    }
    let mut out = argv;
    let at = out.len().min(1);
    out.splice(at..at, added);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn command() -> Command {
        Command::new("t")
            .arg(Arg::new("listen").long("listen").default_value("a"))
            .arg(
                Arg::new("data_dir")
                    .long("data-dir")
                    .env("T_CONFIG_TEST_DIR"),
            )
            .arg(Arg::new("user").long("user").action(ArgAction::Append))
            .arg(Arg::new("config").long("config"))
    }

    fn merged(argv: &[&str], toml: &str) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        let matches = command().get_matches_from(argv.clone());
        merge(&command(), &matches, argv, &path)
            .map(|v| v.into_iter().map(|s| s.into_string().unwrap()).collect())
    }

    #[test]
    fn the_file_fills_what_the_command_line_leaves() {
        let got = merged(
            &["t", "--listen", "cli"],
            "listen = 'file'\ndata_dir = '/d'\nuser = ['a:1', 'b:2']\n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "t",
                "--data-dir",
                "/d",
                "--user",
                "a:1",
                "--user",
                "b:2",
                "--listen",
                "cli"
            ]
        );
    }

    #[test]
    fn unknown_settings_are_named() {
        let err = merged(&["t"], "listne = 'x'\n").unwrap_err();
        assert!(err.contains("unknown setting `listne`"), "{err}");
        assert!(err.contains("listen"), "{err}");
        let err = merged(&["t"], "listen = 1.5\n").unwrap_err();
        assert!(err.contains("must be a string"), "{err}");
    }
}
