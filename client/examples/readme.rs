//! The Rust snippet of README.md ("For programs"): the lines between the markers are the README's
//! text, and `tests/tests/e2e/interop.rs` runs this program against a logged-in agent.
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example program prints"
)]

use authctl_client::proto::GetTokenRequest;
use authctl_client::secrecy::ExposeSecret;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // README: begin
    let mut agent = authctl_client::connect_default().await?; // the socket the CLI uses
    let token = match agent.get_token("corp").await {
        Ok(token) => token,
        Err(e) if e.is_login_required() => {
            eprintln!("{e}"); // it names the command: `authctl login corp`
            std::process::exit(4);
        }
        Err(e) => return Err(e.into()), // e.is_not_running(), e.is_not_found(), …
    };
    println!("expires at {}", token.expires_at);
    // Long-running programs: a handle that always holds a fresh token (it follows Watch events).
    let fresh = agent
        .fresh_token(GetTokenRequest {
            account: "corp".into(),
            ..Default::default()
        })
        .await?;
    let header = format!("Bearer {}", fresh.current().access_token.expose_secret());
    // An app with a user at hand may have the agent log in on demand (one shared browser login):
    let token = agent
        .get_token_with(GetTokenRequest {
            account: "corp".into(),
            interactive: true,
            ..Default::default()
        })
        .await?;
    // README: end
    assert_eq!(
        header,
        format!("Bearer {}", token.access_token.expose_secret())
    );
    Ok(())
}
