//! `tally audit` and `tally log export` as a user runs them: a good log passes with the exact
//! summary; a tampered, shortened, truncated or foreign log fails with exit code 1 naming
//! the height; nodes are read over HTTP from a minimal fake node.

mod fixtures;

use std::path::Path;

use fixtures::{
    chain, fake_node, fake_node_with, json, log_bytes, stderr, stdout, tally, write_genesis,
};
use protocol::chain_log::END_BYTES;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write file");
    path.display().to_string()
}

fn audit_file(genesis: &str, file: &str) -> std::process::Output {
    tally(&["audit", "--file", file, "--genesis", genesis, "--json"])
}

#[test]
fn a_good_log_passes_with_the_exact_summary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    let blocks = chain(7, 0);
    let file = write(dir.path(), "chain.log", &log_bytes(&blocks, 1));

    let output = audit_file(&genesis, &file);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let value = json(&output);
    assert_eq!(value["ok"], true);
    assert_eq!(value["blocks"], 7);
    // Heights 1..=7 hold height % 5 transfers: 1 + 2 + 3 + 4 + 0 + 1 + 2.
    assert_eq!(value["transfers"], 13);
    // Three wallets and the fee account.
    assert_eq!(value["accounts"], 4);
    assert_eq!(value["height"], "7");
    assert_eq!(value["head"], blocks[6].block.hash().to_hex());
    assert_eq!(
        value["state_root"],
        blocks[6].block.header.state_root.to_hex()
    );
    assert_eq!(value["total_supply"], "3000.00");
    assert_eq!(value["failure"], serde_json::Value::Null);

    let text = tally(&["audit", "--file", &file, "--genesis", &genesis]);
    assert_eq!(text.status.code(), Some(0));
    let out = String::from_utf8(text.stdout).expect("utf-8");
    assert!(out.starts_with(&format!("audit passed: {file}\n")), "{out}");
    assert!(out.contains("height        7 (highest certified height verified)\n"));
    assert!(out.contains("total supply  3000.00 (conserved)\n"));
    assert_eq!(
        text.stderr, b"",
        "no progress bar when stderr is not a terminal"
    );
}

#[test]
fn one_flipped_byte_in_one_transfer_fails_naming_its_height() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    let blocks = chain(7, 0);
    let mut bytes = log_bytes(&blocks, 1);

    // The memo's last byte of the last transfer of block 4 ("block 4" becomes "block 5").
    let through_four = log_bytes(&blocks[..4], 1);
    let record_end = through_four.len() - END_BYTES;
    let certificate = blocks[3].certificate.to_bytes().len();
    bytes[record_end - certificate - 4 - 64 - 1] ^= 0x01;
    let file = write(dir.path(), "tampered.log", &bytes);

    let output = audit_file(&genesis, &file);
    assert_eq!(output.status.code(), Some(1));
    let value = json(&output);
    assert_eq!(value["ok"], false);
    assert_eq!(value["failure"]["kind"], "hash_mismatch");
    assert_eq!(value["failure"]["height"], "4");
    assert_eq!(value["height"], "3", "blocks before the bad one verified");
    let line = stderr(&output);
    assert!(
        line.starts_with(&format!(
            "error: audit of {file} failed: height 4: hash mismatch: "
        )),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
}

#[test]
fn a_flipped_byte_that_breaks_decoding_still_names_its_height() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    let blocks = chain(7, 0);
    let mut bytes = log_bytes(&blocks, 1);

    // The transfer version byte of the first transfer of block 3 (right after the header
    // and the transfer count) becomes 0x03: the block no longer decodes.
    let through_two = log_bytes(&blocks[..2], 1);
    let block_start = through_two.len() - END_BYTES + 1 + 4;
    let header_len = blocks[2].block.header.encode().len();
    let version = block_start + header_len + 1;
    assert_eq!(bytes[version], 1);
    bytes[version] = 3;
    let file = write(dir.path(), "undecodable.log", &bytes);

    let output = audit_file(&genesis, &file);
    assert_eq!(output.status.code(), Some(1));
    let value = json(&output);
    assert_eq!(value["failure"]["kind"], "malformed_log");
    assert_eq!(value["failure"]["height"], "3");
    assert_eq!(value["height"], "2");
    let line = stderr(&output);
    assert!(
        line.starts_with(&format!("error: audit of {file} failed: height 3: ")),
        "{line}"
    );
}

#[test]
fn a_dropped_last_block_reports_the_lower_certified_height() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    let blocks = chain(7, 0);

    // A well-formed log of the first six blocks passes, certified up to height 6.
    let shorter = write(dir.path(), "six.log", &log_bytes(&blocks[..6], 1));
    let output = audit_file(&genesis, &shorter);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json(&output)["height"], "6");

    // Cutting the last record out of the file, end record kept, is caught by the end record,
    // after the six blocks before it are verified.
    let full = log_bytes(&blocks, 1);
    let six = log_bytes(&blocks[..6], 1);
    let mut cut = six[..six.len() - END_BYTES].to_vec();
    cut.extend_from_slice(&full[full.len() - END_BYTES..]);
    let file = write(dir.path(), "cut.log", &cut);
    let output = audit_file(&genesis, &file);
    assert_eq!(output.status.code(), Some(1));
    let value = json(&output);
    assert_eq!(value["height"], "6");
    assert_eq!(value["failure"]["kind"], "bad_end_record");
    assert_eq!(
        stderr(&output),
        format!("error: audit of {file} failed: end record counts 7 blocks, the log holds 6\n")
    );
}

#[test]
fn a_truncated_or_padded_log_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    let bytes = log_bytes(&chain(7, 0), 1);

    let truncated = write(
        dir.path(),
        "truncated.log",
        &bytes[..bytes.len() - END_BYTES],
    );
    let output = audit_file(&genesis, &truncated);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output)["height"], "7");
    assert_eq!(json(&output)["failure"]["kind"], "truncated_log");
    assert_eq!(
        stderr(&output),
        format!(
            "error: audit of {truncated} failed: chain log is truncated: \
             it stops after 7 complete blocks, without its end record\n"
        )
    );

    let mut padded_bytes = bytes.clone();
    padded_bytes.extend_from_slice(b"\n");
    let padded = write(dir.path(), "padded.log", &padded_bytes);
    let output = audit_file(&genesis, &padded);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("error: audit of {padded} failed: 1 bytes after the end record of the chain log\n")
    );
}

#[test]
fn setup_errors_exit_with_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    let file = write(dir.path(), "chain.log", &log_bytes(&chain(2, 0), 1));
    let missing = dir.path().join("missing.toml").display().to_string();

    let output = audit_file(&missing, &file);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!("error: reading genesis {missing}: No such file or directory (os error 2)\n")
    );

    let absent = dir.path().join("absent.log").display().to_string();
    let output = audit_file(&genesis, &absent);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!("error: opening {absent}: No such file or directory (os error 2)\n")
    );

    // A directory is refused before any audit starts: no summary on stdout.
    let folder = dir.path().display().to_string();
    let output = audit_file(&genesis, &folder);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output), format!("error: {folder} is not a file\n"));
    assert_eq!(stdout(&output), "");

    let output = tally(&["audit", "--genesis", &genesis]);
    assert_eq!(output.status.code(), Some(2), "a source is required");
    assert_eq!(
        stderr(&output),
        "error: no node to talk to: pass --node URL, set TALLY_NODE, or run `tally devnet` in \
         this directory\n"
    );
}

#[test]
fn a_log_of_another_network_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "chain.log", &log_bytes(&chain(2, 0), 1));
    let mut other = fixtures::genesis();
    other.network = "another-network".into();
    let genesis = write(dir.path(), "other.toml", other.to_toml().as_bytes());

    let output = audit_file(&genesis, &file);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output)["failure"]["kind"], "wrong_network");
}

#[test]
fn export_from_a_node_then_audit_the_file_and_the_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    let blocks = chain(9, 0);
    let node = fake_node(blocks.clone());
    let out = dir.path().join("export.log").display().to_string();

    let exported = tally(&["log", "export", "--node", &node, "--out", &out, "--json"]);
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    assert_eq!(json(&exported)["blocks"], 9);
    assert_eq!(std::fs::read(&out).expect("export"), log_bytes(&blocks, 1));

    let again = tally(&["log", "export", "--node", &node, "--out", &out]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        stderr(&again),
        format!("error: {out} already exists; refusing to overwrite it\n")
    );

    let from_file = audit_file(&genesis, &out);
    assert_eq!(from_file.status.code(), Some(0));
    let from_node = tally(&["audit", "--node", &node, "--genesis", &genesis, "--json"]);
    assert_eq!(from_node.status.code(), Some(0), "{}", stderr(&from_node));
    assert_eq!(json(&from_node)["head"], json(&from_file)["head"]);
    assert_eq!(json(&from_node)["height"], "9");
}

#[test]
fn export_refuses_a_cut_stream_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let full = log_bytes(&chain(3, 0), 1);
    let node = fake_node_with(move |_| full[..full.len() - 10].to_vec());
    let out = dir.path().join("export.log").display().to_string();

    let exported = tally(&["log", "export", "--node", &node, "--out", &out]);
    assert_eq!(exported.status.code(), Some(1));
    assert_eq!(
        stderr(&exported),
        "error: chain log is truncated: it stops after 3 complete blocks, without its end record\n"
    );
    assert!(!Path::new(&out).exists());
}

#[test]
fn several_nodes_are_compared_by_their_certified_heads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    let blocks = chain(6, 0);
    let full = fake_node(blocks.clone());
    let behind = fake_node(blocks[..4].to_vec());
    let forked = fake_node(chain(6, 1));

    let output = tally(&[
        "audit",
        "--node",
        &full,
        "--node",
        &behind,
        "--genesis",
        &genesis,
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let value = json(&output);
    assert_eq!(value["comparison"][0]["status"], "agrees");
    assert_eq!(value["comparison"][1]["status"], "behind");
    assert_eq!(value["comparison"][1]["behind"], 2);

    // A second chain of the same network, certified by the same keys: a fork.
    let output = tally(&[
        "audit",
        "--node",
        &full,
        "--node",
        &forked,
        "--genesis",
        &genesis,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("error: nodes disagree: {forked} not on the chain of {full}\n")
    );
}

#[test]
fn an_unreachable_node_is_a_setup_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = write_genesis(dir.path());
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let node = format!("http://127.0.0.1:{port}");

    let output = tally(&["audit", "--node", &node, "--genesis", &genesis]);
    assert_eq!(output.status.code(), Some(2));
    let line = stderr(&output);
    assert!(
        line.starts_with(&format!("error: GET {node}/v1/log?from=1: ")),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
}
