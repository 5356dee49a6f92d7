//! `tally key new` and `tally key show`: make a wallet key file, and show its address.
//!
//! A key file holds the 32-byte seed as hex (docs/protocol.md §2). It is created with mode
//! 0600 and never overwritten, and `show` refuses a file that group or others may access,
//! since anyone who can read it can spend from the account.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Subcommand;
use protocol::{PublicKey, SecretKey};
use serde_json::json;

use crate::failure::CommandResult;
use crate::files;

/// Wallet key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a new key file (mode 0600) and print its address.
    ///
    /// Example: tally key new --out alice.key
    New {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the address of a key file.
    ///
    /// Example: tally key show alice.key
    Show {
        /// The key file; refused if group or others may access it.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs a key command.
pub fn run(command: KeyCommand, json: bool) -> CommandResult {
    match command {
        KeyCommand::New { out } => new(&out, json),
        KeyCommand::Show { file } => show(&file, json),
    }
}

fn new(out: &Path, json: bool) -> CommandResult {
    let key = create(out)?;
    print_key(&key.public_key(), out, json);
    Ok(())
}

/// Makes a key from the OS's randomness and writes it to a new file `out` (mode 0600).
pub fn create(out: &Path) -> anyhow::Result<SecretKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| anyhow!("no OS randomness: {error}"))?;
    let key = SecretKey::from_seed(&seed);

    files::create_new(out, 0o600, key.to_key_file().as_bytes())?;
    Ok(key)
}

fn show(file: &Path, json: bool) -> CommandResult {
    let key = read(file)?;
    print_key(&key.public_key(), file, json);
    Ok(())
}

/// Reads a key file, refusing one that group or others may access: whoever can read it can
/// spend from the account.
pub fn read(file: &Path) -> anyhow::Result<SecretKey> {
    let metadata =
        std::fs::metadata(file).with_context(|| format!("reading key {}", file.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        let path = file.display();
        return Err(anyhow!(
            "key file {path} is open to group or others (mode {mode:o}); run: chmod 600 {path}"
        ));
    }

    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading key {}", file.display()))?;
    SecretKey::from_key_file(&text).with_context(|| format!("{} is not a key file", file.display()))
}

fn print_key(public: &PublicKey, file: &Path, json: bool) {
    if json {
        let value = json!({
            "address": public.to_address(),
            "public_key": hex_of(public),
            "file": file.display().to_string(),
        });
        println!("{value}");
    } else {
        println!("{}", public.to_address());
    }
}

fn hex_of(public: &PublicKey) -> String {
    public
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
