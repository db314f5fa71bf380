//! The sync driver (filled in below).
