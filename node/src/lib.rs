//! The Tally node runtime. Built up in `storage`, `network`, `mempool`, `consensus` and `api`.
