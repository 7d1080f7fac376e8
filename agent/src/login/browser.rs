//! Opening the system browser from the agent, for on-demand logins.
//!
//! The CLI opens the browser for `authctl login` itself (it has the desktop's environment); only a
//! login an app asks for through `GetToken{interactive}` has no terminal to do it. Unlike the
//! `webbrowser` crate, every child is reaped, and an opener that fails at once (`BROWSER=false`, a
//! missing program) is noticed and the next one tried.

use std::process::Stdio;
use std::time::Duration;

/// How long an opener may take to fail before it counts as having opened the page.
const FAIL_WINDOW: Duration = Duration::from_millis(300);

/// The commands to try, in order: each entry of `$BROWSER` (split on `:`; `%s` is replaced by
/// the URL, else the URL is appended), then the platform's openers — on Linux only with a
/// graphical session (`has_display`): without one they fall back to a text browser nobody sees, or
/// fail slowly, and the caller would wait for the whole login timeout.
#[must_use]
pub fn candidates(browser_var: Option<&str>, url: &str, has_display: bool) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = browser_var
        .unwrap_or_default()
        .split(':')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let mut argv: Vec<String> = entry.split_whitespace().map(str::to_owned).collect();
            if entry.contains("%s") {
                for a in &mut argv {
                    *a = a.replace("%s", url);
                }
            } else {
                argv.push(url.to_owned());
            }
            argv
        })
        .collect();
    let platform: &[&[&str]] = if cfg!(target_os = "macos") {
        &[&["open"]]
    } else if !has_display {
        &[]
    } else {
        &[
            &["xdg-open"],
            &["gio", "open"],
            &["sensible-browser"],
            &["x-www-browser"],
        ]
    };
    out.extend(platform.iter().map(|p| {
        let mut argv: Vec<String> = p.iter().map(|s| (*s).to_owned()).collect();
        argv.push(url.to_owned());
        argv
    }));
    out
}

/// Why no browser opened.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "the agent has no graphical session (no DISPLAY or WAYLAND_DISPLAY; for a user service, `systemctl --user import-environment DISPLAY WAYLAND_DISPLAY`) and no BROWSER"
    )]
    NoDisplay,
    #[error("no browser found: set BROWSER or install xdg-utils")]
    NoneFound,
    #[error("the URL is not an http or https URL; it is not handed to a browser")]
    NotWeb,
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Failed(Vec<OpenerFailed>),
}

/// One opener that failed at once.
#[derive(Debug, thiserror::Error)]
pub enum OpenerFailed {
    #[error("{program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} exited with {status}")]
    Exit {
        program: String,
        status: std::process::ExitStatus,
    },
}

/// Opens `url`; returns the program that took it.
///
/// # Errors
/// Every candidate was missing or failed at once.
pub async fn open(url: &str) -> Result<String, BrowserError> {
    // Only web URLs reach an opener: a `file:` or custom-scheme URL could start another program.
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(BrowserError::NotWeb);
    }
    let browser_var = std::env::var("BROWSER").ok();
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let mut tried = Vec::new();
    for argv in candidates(browser_var.as_deref(), url, has_display) {
        let Some((program, args)) = argv.split_first() else {
            continue;
        };
        let spawned = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                tried.push(OpenerFailed::Spawn {
                    program: program.clone(),
                    source,
                });
                continue;
            }
        };
        match tokio::time::timeout(FAIL_WINDOW, child.wait()).await {
            Ok(Ok(status)) if status.success() => return Ok(program.clone()),
            Ok(Ok(status)) => tried.push(OpenerFailed::Exit {
                program: program.clone(),
                status,
            }),
            Ok(Err(source)) => tried.push(OpenerFailed::Spawn {
                program: program.clone(),
                source,
            }),
            Err(_) => {
                // Still running: it has the page. Reap it whenever it ends.
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
                return Ok(program.clone());
            }
        }
    }
    Err(if !tried.is_empty() {
        BrowserError::Failed(tried)
    } else if !has_display && !cfg!(target_os = "macos") {
        BrowserError::NoDisplay
    } else {
        BrowserError::NoneFound
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_entries_come_first_with_percent_s_or_appended_url() {
        let c = candidates(
            Some("firefox --new-tab:my-open %s --flag: "),
            "http://x/",
            true,
        );
        assert_eq!(c[0], vec!["firefox", "--new-tab", "http://x/"]);
        assert_eq!(c[1], vec!["my-open", "http://x/", "--flag"]);
        assert!(c.len() > 2, "platform openers follow");
        assert_eq!(c.last().unwrap().last().unwrap(), "http://x/");
    }

    #[test]
    fn without_browser_only_platform_openers() {
        let c = candidates(None, "u", true);
        assert!(c.iter().all(|a| a.last().unwrap() == "u"));
        assert!(!c.is_empty());
    }

    #[test]
    fn without_a_display_only_browser_entries_on_linux() {
        let c = candidates(Some("my-browser"), "u", false);
        if cfg!(target_os = "macos") {
            assert_eq!(c.len(), 2);
        } else {
            assert_eq!(c, vec![vec!["my-browser".to_owned(), "u".to_owned()]]);
            assert!(candidates(None, "u", false).is_empty());
        }
    }
}
