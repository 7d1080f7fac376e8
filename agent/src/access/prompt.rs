//! Asking the user, through a prompt program the agent starts itself (never through an RPC the
//! requesting process could call): the pinentry protocol's `CONFIRM`, as gpg-agent and rbw use it,
//! with three buttons — allow for a while, allow once, deny.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// The user's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    AllowForAWhile,
    AllowOnce,
    Deny,
    /// No answer: no prompt program, it failed, or the time ran out.
    Unanswered(String),
}

/// `CONFIRM` cancelled (the Cancel button): `GPG_ERR_CANCELED` from pinentry.
const ERR_CANCELED: &str = "83886179";
/// The third (`SETNOTOK`) button: `GPG_ERR_NOT_CONFIRMED` from pinentry.
const ERR_NOT_CONFIRMED: &str = "83886194";

/// The prompt program: configured, else the first pinentry on `PATH`.
#[must_use]
pub fn program(configured: Option<&str>) -> Option<String> {
    if let Some(p) = configured {
        return Some(p.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    [
        "pinentry-gnome3",
        "pinentry-qt",
        "pinentry-gtk-2",
        "pinentry",
    ]
    .into_iter()
    .find(|name| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
    .map(str::to_owned)
}

/// A period in words, for a button: `45 s`, `20 min`, `8 h`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h", s.div_ceil(3600)),
    }
}

/// Escapes text for an Assuan command argument (`%`, CR, LF).
fn escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Asks through `program` with `description`, waiting at most `timeout`.
pub async fn ask(
    program: &str,
    description: &str,
    remember: Duration,
    timeout: Duration,
) -> Answer {
    match tokio::time::timeout(timeout, converse(program, description, remember)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => Answer::Unanswered(format!("the prompt program `{program}` failed: {e}")),
        Err(_) => Answer::Unanswered(format!(
            "nobody answered the prompt within {} s",
            timeout.as_secs()
        )),
    }
}

async fn converse(program: &str, description: &str, remember: Duration) -> std::io::Result<Answer> {
    let mut child = Command::new(program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut reply = async || -> std::io::Result<String> {
        loop {
            let line = lines
                .next_line()
                .await?
                .ok_or_else(|| std::io::Error::other("the prompt program ended"))?;
            // Status and comment lines come before the answer.
            if line.starts_with("OK") || line.starts_with("ERR") {
                return Ok(line);
            }
        }
    };
    reply().await?; // the greeting
    for command in [
        "SETTITLE authctl: allow access?".to_owned(),
        format!("SETDESC {}", escape(description)),
        format!("SETOK Allow for {}", span(remember)),
        "SETNOTOK Allow once".to_owned(),
        "SETCANCEL Deny".to_owned(),
    ] {
        stdin.write_all(format!("{command}\n").as_bytes()).await?;
        reply().await?;
    }
    stdin.write_all(b"CONFIRM\n").await?;
    let answer = reply().await?;
    let _ = stdin.write_all(b"BYE\n").await;
    let _ = child.wait().await;
    Ok(if answer.starts_with("OK") {
        Answer::AllowForAWhile
    } else if answer.contains(ERR_NOT_CONFIRMED) {
        Answer::AllowOnce
    } else if answer.contains(ERR_CANCELED) {
        Answer::Deny
    } else {
        Answer::Unanswered(format!("the prompt program answered `{answer}`"))
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn scripted(dir: &std::path::Path, confirm: &str) -> String {
        let path = dir.join(format!("pinentry-{}", confirm.len()));
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho 'OK Pleased to meet you'\nwhile read -r cmd rest; do\n  case $cmd in\n    CONFIRM) echo '{confirm}' ;;\n    BYE) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone\n"
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", path.to_str().unwrap()])
            .status()
            .unwrap();
        path.display().to_string()
    }

    #[tokio::test]
    async fn the_three_buttons_and_silence() {
        let dir = tempfile::tempdir().unwrap();
        let t = Duration::from_secs(5);
        let r = Duration::from_secs(3600);
        assert_eq!(
            ask(&scripted(dir.path(), "OK"), "x", r, t).await,
            Answer::AllowForAWhile
        );
        assert_eq!(
            ask(
                &scripted(dir.path(), "ERR 83886194 Not confirmed"),
                "x",
                r,
                t
            )
            .await,
            Answer::AllowOnce
        );
        assert_eq!(
            ask(
                &scripted(dir.path(), "ERR 83886179 Operation cancelled"),
                "x",
                r,
                t
            )
            .await,
            Answer::Deny
        );
        assert!(matches!(
            ask("/nonexistent/pinentry", "x", r, t).await,
            Answer::Unanswered(_)
        ));
        let silent = dir.path().join("silent");
        std::fs::write(&silent, "#!/bin/sh\necho OK hi\nsleep 30\n").unwrap();
        std::process::Command::new("chmod")
            .args(["+x", silent.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(matches!(
            ask(silent.to_str().unwrap(), "x", r, Duration::from_millis(300)).await,
            Answer::Unanswered(m) if m.contains("within")
        ));
    }

    #[test]
    fn periods_read_well_on_a_button() {
        assert_eq!(span(Duration::from_secs(5)), "5 s");
        assert_eq!(span(Duration::from_secs(1200)), "20 min");
        assert_eq!(span(Duration::from_secs(8 * 3600)), "8 h");
    }

    #[test]
    fn descriptions_are_escaped() {
        assert_eq!(escape("100%\nok"), "100%25%0Aok");
    }
}
