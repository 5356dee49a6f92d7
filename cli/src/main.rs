//! The `tally` binary.

fn main() {
    println!("tally {}", env!("CARGO_PKG_VERSION"));
}
