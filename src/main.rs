//! The `sichss` binary: everything is in [`sichss::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    sichss::cli::run()
}
