//! `authctl access list | revoke | log`: the remembered "allow for a while" grants of the
//! agent's per-application authorization (`[access]` in config.toml), and its audit log.

use std::fmt::Write as _;
use std::path::PathBuf;

use authctl_client::proto::{ListGrantsRequest, RevokeGrantsRequest};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::error::{CliError, exit};
use crate::output::{now, println_out, relative};

#[derive(Subcommand)]
pub enum AccessCommand {
    /// List the remembered grants ("allow for a while" answers): program, account, key, expiry
    List {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Revoke remembered grants: the program is asked again next time
    Revoke {
        /// Grant ids (see `authctl access list`)
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<u64>,
        /// Revoke every grant
        #[arg(long)]
        all: bool,
    },
    /// Show the audit log: every token handed out or refused, every administrative call
    Log(LogArgs),
}

#[derive(Args)]
pub struct LogArgs {
    /// Print the log's JSON lines as they are (one object per line)
    #[arg(long)]
    json: bool,
    /// Only entries since then: a duration back from now (`30s`, `15m`, `2h`, `7d`) or an RFC 3339
    /// time (`2026-12-03T09:00:00Z`)
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<String>,
    /// Only this account's entries
    #[arg(long)]
    account: Option<String>,
    /// Only refusals
    #[arg(long)]
    denied: bool,
}

pub async fn run(c: AccessCommand) -> Result<(), CliError> {
    match c {
        AccessCommand::List { json } => list(json).await,
        AccessCommand::Revoke { ids, all } => revoke(ids, all).await,
        AccessCommand::Log(a) => log(&a).await,
    }
}

async fn list(json: bool) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    let grants = client
        .raw()
        .list_grants(ListGrantsRequest {})
        .await
        .map_err(|s| client.error(s))?
        .into_inner()
        .grants;
    if json {
        let v: Vec<Value> = grants
            .iter()
            .map(|g| {
                serde_json::json!({"id": g.id, "exe": g.exe, "exe_sha256": g.exe_sha256,
                    "unit": g.unit, "script": g.script, "account": g.account,
                    "scopes": g.scopes, "resource": g.resource,
                    "granted_at": g.granted_at, "expires_at": g.expires_at})
            })
            .collect();
        println_out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    if grants.is_empty() {
        eprintln!("no grants; a program allowed \"for a while\" at a prompt appears here");
        return Ok(());
    }
    let now = now();
    for g in grants {
        let mut program = g.exe.clone();
        if !g.script.is_empty() {
            let _ = write!(program, " script {}", g.script);
        }
        if !g.unit.is_empty() {
            let _ = write!(program, " unit {}", g.unit);
        }
        println_out(&format!(
            "{}\t{program}\t{}\t{}\texpires {}",
            g.id,
            g.account,
            key(&g.scopes, &g.resource),
            relative(g.expires_at, now)
        ));
    }
    Ok(())
}

/// The token key of a grant or an entry: its scopes and resource, or `any key` (the account's
/// own scopes).
fn key(scopes: &[String], resource: &str) -> String {
    let mut parts = Vec::new();
    if !scopes.is_empty() {
        parts.push(format!("scopes {}", scopes.join(" ")));
    }
    if !resource.is_empty() {
        parts.push(format!("resource {resource}"));
    }
    if parts.is_empty() {
        "default key".into()
    } else {
        parts.join(", ")
    }
}

async fn revoke(ids: Vec<u64>, all: bool) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    let asked = ids.len();
    let revoked = client
        .raw()
        .revoke_grants(RevokeGrantsRequest { ids, all })
        .await
        .map_err(|s| client.error(s))?
        .into_inner()
        .revoked;
    eprintln!("revoked {revoked} grant(s)");
    if !all && usize::try_from(revoked).unwrap_or(0) < asked {
        return Err(CliError::new(
            exit::NOT_FOUND,
            format!(
                "{} of the {asked} grant(s) named did not exist (see `authctl access list`)",
                asked - usize::try_from(revoked).unwrap_or(0)
            ),
        ));
    }
    Ok(())
}

/// `--since`: a duration back from now, or an RFC 3339 time; normalised to the log's own
/// format (RFC 3339 in UTC, seconds), which orders as text.
fn parse_since(s: &str) -> Result<String, String> {
    let utc =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(utc(t.with_timezone(&chrono::Utc)));
    }
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().map_err(|_| {
        format!("`{s}` is neither a duration (30s, 15m, 2h, 7d) nor an RFC 3339 time")
    })?;
    let seconds = match unit {
        "s" | "" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("`{s}`: the unit must be s, m, h or d")),
    };
    let since = chrono::Utc::now() - chrono::TimeDelta::try_seconds(seconds).ok_or("too long")?;
    Ok(utc(since))
}

/// The audit log's path: the running agent's, else where an agent of this user writes it.
async fn log_path() -> Option<PathBuf> {
    if let Ok(mut c) = super::connect_existing().await
        && let Ok(s) = c.status().await
        && !s.audit_log.is_empty()
    {
        return Some(PathBuf::from(s.audit_log));
    }
    let dirs = directories::ProjectDirs::from("", "", "authctl")?;
    Some(
        dirs.state_dir()
            .unwrap_or_else(|| dirs.data_dir())
            .join("access.log"),
    )
}

async fn log(a: &LogArgs) -> Result<(), CliError> {
    let Some(path) = log_path().await else {
        return Err(CliError::new(
            exit::FAILURE,
            "cannot find the audit log: no home directory",
        ));
    };
    let mut text = String::new();
    let mut found = false;
    // The rotated part first: lines in time order.
    for p in [path.with_extension("log.1"), path.clone()] {
        match std::fs::read_to_string(&p) {
            Ok(t) => {
                text.push_str(&t);
                found = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CliError::new(
                    exit::FAILURE,
                    format!("cannot read the audit log {}: {e}", p.display()),
                ));
            }
        }
    }
    if !found {
        eprintln!("nothing logged yet ({})", path.display());
        return Ok(());
    }
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if !keep(a, &v) {
            continue;
        }
        if a.json {
            println_out(line);
        } else {
            println_out(&describe(&v));
        }
    }
    Ok(())
}

fn keep(a: &LogArgs, v: &Value) -> bool {
    let s = |k: &str| v[k].as_str().unwrap_or_default();
    a.since.as_deref().is_none_or(|since| s("time") >= since)
        && a.account.as_deref().is_none_or(|acct| s("account") == acct)
        && (!a.denied || s("decision") == "deny")
}

/// One entry as a line: time, decision, what, the program, what decided, the outcome.
fn describe(v: &Value) -> String {
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let what = if s(v, "kind") == "admin" {
        s(v, "action")
    } else {
        let scopes: Vec<String> = v["scopes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "token {} ({})",
            s(v, "account"),
            key(&scopes, &s(v, "resource"))
        )
    };
    let caller = &v["caller"];
    let (program, via) = if caller["on_behalf_of"].is_object() {
        (&caller["on_behalf_of"], " via authctl")
    } else {
        (&caller["process"], "")
    };
    let mut who = format!(
        "{} (pid {}",
        Some(s(program, "exe"))
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "?".into()),
        program["pid"]
    );
    for (k, label) in [("script", "script"), ("unit", "unit")] {
        if let Some(x) = program[k].as_str() {
            let _ = write!(who, ", {label} {x}");
        }
    }
    who.push(')');
    let repeated = match v["repeated"].as_u64() {
        Some(n) if n > 0 => format!("  (repeated {n} more times since the line before)"),
        _ => String::new(),
    };
    format!(
        "{}  {:5}  {what}  {who}{via}  [{}]  {}{repeated}",
        s(v, "time"),
        s(v, "decision"),
        s(v, "by"),
        s(v, "outcome")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times_in_the_logs_format() {
        assert_eq!(
            parse_since("2026-12-03T10:00:00+01:00").unwrap(),
            "2026-12-03T09:00:00Z"
        );
        let an_hour_ago = parse_since("1h").unwrap();
        assert!(an_hour_ago < parse_since("30m").unwrap());
        assert!(parse_since("3w").is_err());
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn entries_read_as_one_line_naming_the_program_behind_the_cli() {
        let v: Value = serde_json::from_str(
            r#"{"time":"2026-12-03T10:00:00Z","kind":"token","account":"corp","decision":"allow",
            "by":"rule 1","outcome":"handed out","caller":{"uid":1000,"gid":1000,
            "process":{"pid":9,"exe":"/usr/bin/authctl"},
            "on_behalf_of":{"pid":8,"exe":"/usr/bin/bash","script":"/home/a/deploy.sh"},
            "parents":[[8,"/usr/bin/bash"]],"gone":false}}"#,
        )
        .unwrap();
        assert_eq!(
            describe(&v),
            "2026-12-03T10:00:00Z  allow  token corp (default key)  /usr/bin/bash (pid 8, script /home/a/deploy.sh) via authctl  [rule 1]  handed out"
        );
        let a = LogArgs {
            json: false,
            since: Some("2026-12-03T10:00:01Z".into()),
            account: None,
            denied: false,
        };
        assert!(!keep(&a, &v));
        let mut summary = v.clone();
        summary["repeated"] = 41.into();
        assert!(
            describe(&summary)
                .ends_with("handed out  (repeated 41 more times since the line before)")
        );
    }
}
