//! The `sichss` binary.
#![forbid(unsafe_code)]

fn main() {
    println!("sichss");
}
