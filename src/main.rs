//! The `sichss` binary: see [`sichss::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    sichss::cli::run()
}
