//! Normalization and SHA-256 hashing of `user_data` fields, one function per Pinterest rule.
//!
//! Pure functions. A value that already is 64 hex characters is passed through (lowercased); a value
//! that is empty after normalization yields `None` (never the hash of "").

// Implemented in the Foundation issue (see the rules table there).
