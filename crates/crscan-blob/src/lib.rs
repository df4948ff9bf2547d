//! Content-addressed blob storage with digest verification and atomic writes.
