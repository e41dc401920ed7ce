//! Reliability (issue 7): `sichss serve` killed with SIGKILL under load keeps every
//! acknowledged change and never repeats an SQN ([`crash`]); overload meets bounded queues
//! and 3004 DIAMETER_TOO_BUSY, the watchdog keeps working and the server recovers by
//! itself ([`overload`]); hostile and broken peers leave memory and descriptors bounded
//! and a well-behaved peer's latency near its quiet value ([`hostile`]). RELIABILITY.md
//! gives the figures and how to rerun each test.
//!
//! Every test runs on loopback, on ephemeral ports, and is bounded in time. The tests
//! that load the machine or measure latency take [`common::heavy`] so that they run one
//! at a time.

mod common;
mod crash;
mod hostile;
mod overload;
#[path = "../common/serve.rs"]
mod serve_process;
