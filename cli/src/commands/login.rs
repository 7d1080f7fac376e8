//! `authctl login`: the agent runs the loopback login and streams the authorization URL; the CLI
//! prints it and opens the browser (a user service often lacks the desktop's environment).

use std::time::Duration;

use authctl_client::proto::{LoginCompleted, LoginRequest, login_event::Event};
use clap::Args;

use crate::error::{CliError, exit};
use crate::output::println_out;

#[derive(Args)]
pub struct LoginArgs {
    /// Provider name, an existing account's name (to log it in again), or the https URL of a
    /// protected resource such as an MCP server (zero-config: RFC 9728 metadata, RFC 8414
    /// discovery, dynamic client registration, remembered as a provider)
    #[arg(value_name = "PROVIDER|ACCOUNT|URL")]
    provider: String,
    /// Name of the account to create or log in again (default: the provider's only account, or
    /// the provider's name for its first)
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Scopes for this login (repeatable; default: the provider's configured scopes)
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Only print the URL; do not open a browser
    #[arg(long)]
    no_browser: bool,
    /// Use the device flow (RFC 8628): shows a code to enter on any device with a browser
    #[arg(long)]
    device: bool,
    /// Seconds to wait for the browser login (default: the provider's login_timeout_seconds)
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u32>,
    /// Let a login of an existing account come back as another user, who then owns the account
    /// (without it, a re-login as another user changes nothing and fails)
    #[arg(long)]
    other_user: bool,
}

pub async fn run(a: LoginArgs) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    let req = LoginRequest {
        provider: a.provider.clone(),
        account_name: a.account.clone().unwrap_or_default(),
        scopes: a.scopes.clone(),
        device_flow: a.device,
        timeout_seconds: a.timeout.unwrap_or(0),
        other_user: a.other_user,
    };
    let stream = client
        .raw()
        .login(req)
        .await
        .map_err(|s| client.error(s))?
        .into_inner();
    let c = follow(
        &client,
        stream,
        a.no_browser,
        "To log in, open this URL in a browser:",
    )
    .await?;
    for w in &c.warnings {
        eprintln!("authctl: warning: {w}");
    }
    let acc = c.account.unwrap_or_default();
    let who = if acc.display_name.is_empty() {
        acc.subject.clone()
    } else {
        acc.display_name.clone()
    };
    eprintln!("Logged in to {}.", acc.provider);
    println_out(&format!(
        "account {} ({})",
        acc.name,
        if who.is_empty() { "unknown user" } else { &who }
    ));
    Ok(())
}

/// Follows a browser flow the agent streams (a login, an end-session): prints the URL (after
/// `prompt`) and opens it unless `no_browser`, or shows the device code, until the outcome.
///
/// # Errors
/// The flow failed, was denied or timed out, or the agent went away.
pub async fn follow(
    client: &authctl_client::Client,
    mut stream: tonic::Streaming<authctl_client::proto::LoginEvent>,
    no_browser: bool,
    prompt: &str,
) -> Result<LoginCompleted, CliError> {
    let mut spinner: Option<indicatif::ProgressBar> = None;
    let result = loop {
        let ev = match stream.message().await.map_err(|s| client.error(s)) {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                break Err(CliError::new(
                    exit::FAILURE,
                    "the agent ended the flow without an outcome",
                ));
            }
            Err(e) => break Err(e.into()),
        };
        match ev.event {
            Some(Event::AuthorizeUrl(u)) => {
                eprintln!("{prompt}\n\n  {}\n", redact_hint(&u.url));
                if !no_browser {
                    open_browser(&u.url);
                }
                spinner = Some(waiting_spinner());
            }
            Some(Event::DeviceCode(d)) => {
                eprintln!(
                    "To log in, open {} on any device and enter the code:\n\n  {}\n",
                    d.verification_uri, d.user_code
                );
                if !d.verification_uri_complete.is_empty() {
                    eprintln!("(or open {} directly)\n", d.verification_uri_complete);
                    if !no_browser {
                        open_browser(&d.verification_uri_complete);
                    }
                }
                spinner = Some(waiting_spinner());
            }
            Some(Event::Completed(c)) => break Ok(c),
            Some(Event::Failed(f)) => break Err(CliError::new(exit::LOGIN_FAILED, f.reason)),
            None => {}
        }
    };
    if let Some(s) = spinner.take() {
        s.finish_and_clear();
    }
    result
}

fn open_browser(url: &str) {
    // Only web URLs reach a desktop opener: a `file:` or custom-scheme URL from a hostile server
    // could start another program.
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        eprintln!(
            "Not opening a URL that is not http or https; check it before you open it yourself."
        );
        return;
    }
    // `webbrowser` honours $BROWSER and reports launch failures only; say what to do either way.
    match webbrowser::open(url) {
        Ok(()) => eprintln!("Opened your browser; waiting for you to finish there…"),
        Err(e) => eprintln!("Could not open a browser ({e}); open the URL above yourself."),
    }
}

fn waiting_spinner() -> indicatif::ProgressBar {
    let pb =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none()
    {
        pb.set_message("waiting for the browser (Ctrl-C to cancel)");
        pb.enable_steady_tick(Duration::from_millis(120));
    } else {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    pb
}

/// The URL with an `id_token_hint` value hidden: the browser gets the token, the terminal's
/// scrollback does not.
fn redact_hint(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = url
        .find("id_token_hint=")
        .map(|i| i + "id_token_hint=".len())
    else {
        return url.into();
    };
    let end = url[start..].find('&').map_or(url.len(), |i| start + i);
    format!("{}[hidden]{}", &url[..start], &url[end..]).into()
}

#[cfg(test)]
mod tests {
    use super::redact_hint;

    #[test]
    fn the_id_token_hint_is_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_hint("https://i/end?client_id=c&id_token_hint=eyJ.x.y&state=s"),
            "https://i/end?client_id=c&id_token_hint=[hidden]&state=s"
        );
        assert_eq!(
            redact_hint("https://i/end?id_token_hint=eyJ.x.y"),
            "https://i/end?id_token_hint=[hidden]"
        );
        assert_eq!(
            redact_hint("https://i/auth?state=s"),
            "https://i/auth?state=s"
        );
    }
}
