//! FEC benches (being written).
fn main() {}
