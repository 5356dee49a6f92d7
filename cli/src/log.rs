//! `tally log export`: save a node's whole chain, blocks with their certificates, as a chain
//! log file (docs/log-format.md).
//!
//! The body streams to disk chunk by chunk while the decoder checks its format, so memory is
//! bounded at any chain length; a stream that is cut short or malformed is refused and the
//! partial file removed. Checking the chain itself is `tally audit`'s job.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use protocol::Hash;
use protocol::chain_log::{DEFAULT_MAX_BLOCK_BYTES, Decoder, LogItem};
use serde_json::json;

use crate::failure::{CommandResult, Failure};
use crate::files;
use crate::progress::Progress;
use crate::source::{self, Source};
use crate::target::NodeArg;

/// Bytes read from the node at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chain log commands.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Export a node's whole chain to a log file, streamed.
    ///
    /// Example: tally log export --node http://127.0.0.1:7100 --out chain.log
    Export {
        #[command(flatten)]
        node: NodeArg,
        /// Where to write the log; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// What an export wrote.
struct Exported {
    network_id: Hash,
    blocks: u64,
    head: Hash,
    bytes: u64,
}

/// Runs a log command.
pub fn run(command: LogCommand, json: bool) -> CommandResult {
    match command {
        LogCommand::Export { node, out } => export(&node.url()?, &out, json),
    }
}

fn export(node: &str, out: &Path, json: bool) -> CommandResult {
    let source = Source::Node(node.to_string());
    let mut opened = source::open(&source, 1)?;
    let file = files::open_new(out, 0o644)?;
    let progress = Progress::new(None, node);

    let mut writer = BufWriter::new(file);
    let copied = copy_checked(&mut opened.reader, &mut writer, &progress);
    progress.finish();
    let finished = copied.and_then(|exported| {
        let file = writer.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()
            .with_context(|| format!("writing {}", out.display()))?;
        Ok(exported)
    });
    let exported = match finished {
        Ok(exported) => exported,
        Err(failure) => {
            // A partial log must not be mistaken for an export; ignore a failed removal,
            // the error being reported matters more.
            let _ = std::fs::remove_file(out);
            return Err(failure);
        }
    };

    print_exported(&exported, out, json);
    Ok(())
}

/// Copies the stream to `writer` while decoding it; fails on any malformed or cut stream.
fn copy_checked(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    progress: &Progress,
) -> Result<Exported, Failure> {
    let mut decoder = Decoder::new(None, DEFAULT_MAX_BLOCK_BYTES);
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut exported = Exported {
        network_id: Hash::ZERO,
        blocks: 0,
        head: Hash::ZERO,
        bytes: 0,
    };
    let mut height = 0;
    loop {
        let read = reader
            .read(&mut chunk)
            .context("reading the log from the node")?;
        if read == 0 {
            break;
        }
        writer
            .write_all(&chunk[..read])
            .context("writing the log")?;
        exported.bytes += read as u64;

        decoder.push(&chunk[..read]);
        while let Some(item) = decoder.next_item().map_err(Failure::rejected)? {
            match item {
                LogItem::Header(header) => exported.network_id = header.network_id,
                LogItem::Block(certified) => height = certified.block.header.height,
                LogItem::End(_) => {}
            }
        }
        progress.update(exported.bytes, height);
    }

    let end = decoder.finish().map_err(Failure::rejected)?;
    exported.blocks = end.blocks;
    exported.head = end.last_hash;
    Ok(exported)
}

fn print_exported(exported: &Exported, out: &Path, json: bool) {
    if json {
        let value = json!({
            "file": out.display().to_string(),
            "network_id": exported.network_id.to_hex(),
            "blocks": exported.blocks,
            "head": exported.head.to_hex(),
            "bytes": exported.bytes,
        });
        println!("{value}");
    } else {
        println!("wrote {} ({} bytes)", out.display(), exported.bytes);
        println!("network id  {}", exported.network_id);
        println!("blocks      {}", exported.blocks);
        println!("head        {}", exported.head);
    }
}
