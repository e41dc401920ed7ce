//! Cx application tests: the Cx layer over a real sled store in a temporary directory.
//! Every request is encoded and decoded before it is handled, and every answer is encoded,
//! decoded and checked against the dictionary's answer grammar, as a peer would see it.

mod harness;
mod lir;
mod mar;
mod patent;
mod sar;
mod uar;
