//! Bytes a directory takes on disk.

use std::path::Path;

/// The total length of the files under `path`, recursively; 0 for what cannot be read.
///
/// File lengths, not allocated blocks: sled's segment files are written sequentially, so the
/// two differ by at most a block per file.
pub fn size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |metadata| metadata.len()),
            Err(_) => 0,
        })
        .sum()
}
