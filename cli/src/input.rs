//! Reading a command's input: a file, or standard input.

use std::io::Read as _;
use std::path::Path;

/// Reads the raw bytes of `file`, or of standard input when none is given; the error is the one-line
/// message to print.
pub fn read_body(file: Option<&Path>) -> Result<Vec<u8>, String> {
    match file {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(body)
        }
    }
}
