//! The dispatch Lambda (to be written).

fn main() {}
