//! The ingest Lambda (to be written).

fn main() {}
