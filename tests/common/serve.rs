//! Starting a `sichss serve` process on ephemeral loopback ports and reading its ready
//! line (`sichss listening diameter=… api=… … [diameter_tls=…] [api_scheme=https]`), for
//! the test binaries that run the real process. They declare it with
//! `#[path = "…/common/serve.rs"] mod serve_process;`, so binaries that do not run it
//! do not compile it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the ready line says.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The first Diameter (TCP) listener.
    pub diameter: SocketAddr,
    /// The first API listener.
    pub api: SocketAddr,
    /// The first Diameter over TLS listener, when TLS listeners were asked for.
    pub diameter_tls: Option<SocketAddr>,
    /// `https` when the API serves TLS, else `http`.
    pub api_scheme: String,
}

impl Ready {
    /// Parses the ready line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Ready> {
        let rest = line.strip_prefix("sichss listening ")?;
        let value = |k: &str| rest.split(' ').find_map(|kv| kv.strip_prefix(k));
        let first = |v: &str| -> SocketAddr { v.split(',').next().unwrap().parse().unwrap() };
        Some(Ready {
            diameter: first(value("diameter=").expect("diameter= in the ready line")),
            api: first(value("api=").expect("api= in the ready line")),
            diameter_tls: value("diameter_tls=").map(first),
            api_scheme: value("api_scheme=").unwrap_or("http").to_owned(),
        })
    }
}

/// `sichss serve` with Diameter and the API on ephemeral loopback ports; the caller adds
/// the store, configuration, other arguments, environment and where stderr goes.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sichss"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    cmd
}

/// Spawns `cmd` with its stdout piped and waits at most `within` for the ready line;
/// then a thread keeps draining stdout so the child never blocks on a full pipe.
///
/// # Panics
/// When the process does not start, exits before its ready line (the panic shows `log`,
/// its stderr file, when it has one) or prints other lines past `within`.
pub fn spawn(cmd: &mut Command, within: Duration, log: Option<&Path>) -> (Child, Ready) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("sichss serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + within;
    let ready = loop {
        assert!(Instant::now() < deadline, "no 'sichss listening' line");
        let line = lines
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "sichss serve exited before listening: {}",
                    log.map(|l| std::fs::read_to_string(l).unwrap_or_default())
                        .unwrap_or_default()
                )
            })
            .unwrap();
        if let Some(ready) = Ready::parse(&line) {
            break ready;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, ready)
}
