//! Small file helpers shared by the commands: creating a file without ever overwriting one,
//! and reading a genesis with the file name in every error.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, anyhow};
use protocol::Genesis;

/// Creates `path` with `mode` and writes `contents`, refusing to replace an existing file.
pub fn create_new(path: &Path, mode: u32, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = open_new(path, mode)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Opens a new file at `path` with `mode`, refusing to replace an existing one.
pub fn open_new(path: &Path, mode: u32) -> anyhow::Result<File> {
    let opened = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path);
    opened.map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => {
            anyhow!(
                "{} already exists; refusing to overwrite it",
                path.display()
            )
        }
        _ => anyhow!(error).context(format!("creating {}", path.display())),
    })
}

/// Reads and validates a genesis file.
pub fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading genesis {}", path.display()))?;
    Genesis::from_toml(&text).with_context(|| format!("genesis {}", path.display()))
}
