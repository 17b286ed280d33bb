//! netsim benches (in progress).

fn main() {}
