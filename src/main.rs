//! The `sichss` binary: everything is in [`sichss::cli`].
#![forbid(unsafe_code)]

/// mimalloc instead of glibc malloc: glibc's `_int_malloc`/`malloc_consolidate` took over
/// half of the server's CPU during a bulk import into a big store (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sichss::cli::run()
}
