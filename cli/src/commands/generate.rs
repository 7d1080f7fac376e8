//! `authctl generate completions SHELL | man`: shell completions and the man page, generated from
//! the CLI definition (the copies in `packaging/` are these outputs, checked by a drift test).

use clap::{CommandFactory, Subcommand};

#[derive(Subcommand)]
pub enum GenerateCommand {
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff)
    Man,
}

/// The bytes each generator prints.
#[must_use]
pub fn render(c: &GenerateCommand) -> Vec<u8> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    match c {
        GenerateCommand::Completions { shell } => {
            clap_complete::generate(*shell, &mut cmd, "authctl", &mut out);
        }
        GenerateCommand::Man => {
            let _ = clap_mangen::Man::new(cmd).render(&mut out);
        }
    }
    out
}

pub fn run(c: &GenerateCommand) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&render(c))
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copies in packaging/ are what the CLI generates: regenerate them with
    /// `authctl generate completions SHELL > packaging/completions/…` and `authctl generate man`.
    #[test]
    fn packaging_completions_and_man_page_match_the_cli() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
        let cases = [
            (
                GenerateCommand::Completions {
                    shell: clap_complete::Shell::Bash,
                },
                "completions/authctl.bash",
            ),
            (
                GenerateCommand::Completions {
                    shell: clap_complete::Shell::Zsh,
                },
                "completions/_authctl",
            ),
            (
                GenerateCommand::Completions {
                    shell: clap_complete::Shell::Fish,
                },
                "completions/authctl.fish",
            ),
            (GenerateCommand::Man, "man/authctl.1"),
        ];
        for (cmd, file) in cases {
            let committed = std::fs::read(dir.join(file)).unwrap();
            assert!(
                committed == render(&cmd),
                "packaging/{file} is stale: regenerate it (see the test's doc)"
            );
        }
    }
}
