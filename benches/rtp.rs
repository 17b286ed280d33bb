//! rtp benches (in progress).

fn main() {}
