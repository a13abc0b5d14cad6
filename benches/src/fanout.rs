//! The fan-out comparison (filled in below).
