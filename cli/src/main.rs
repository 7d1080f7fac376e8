//! `authctl`; see the library.

fn main() -> std::process::ExitCode {
    authctl_cli::main()
}
