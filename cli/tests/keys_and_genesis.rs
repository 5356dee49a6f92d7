//! `tally key` and `tally genesis` as a user runs them: files, modes, output and the exact
//! error line and exit code for each kind of bad input.

mod fixtures;

use std::os::unix::fs::PermissionsExt;

use fixtures::{json, stderr, stdout, tally};
use protocol::{Genesis, PublicKey};

#[test]
fn key_new_writes_a_private_file_and_never_overwrites_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alice.key");
    let path_text = path.display().to_string();

    let created = tally(&["key", "new", "--out", &path_text]);
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    let address = stdout(&created).trim().to_string();
    assert!(PublicKey::from_address(&address).is_ok(), "{address}");
    let mode = std::fs::metadata(&path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let shown = tally(&["key", "show", &path_text]);
    assert_eq!(shown.status.code(), Some(0));
    assert_eq!(stdout(&shown).trim(), address);

    let before = std::fs::read(&path).expect("key file");
    let again = tally(&["key", "new", "--out", &path_text]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        stderr(&again),
        format!("error: {path_text} already exists; refusing to overwrite it\n")
    );
    assert_eq!(std::fs::read(&path).expect("key file"), before);
}

#[test]
fn key_show_prints_the_documented_address_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("known.key");
    let seed: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, format!("{seed}\n")).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let shown = tally(&["key", "show", &path.display().to_string(), "--json"]);
    assert_eq!(shown.status.code(), Some(0));
    let value = json(&shown);
    assert_eq!(
        value["address"],
        "tly1qwss00lnecgtu8tsm5vwwj7qn9n7f43snwjs6hcamjrxgyj4xxuqvc5ngk"
    );
    assert_eq!(
        value["public_key"],
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    );
}

#[test]
fn key_show_refuses_a_key_others_can_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("open.key");
    let path_text = path.display().to_string();
    assert_eq!(
        tally(&["key", "new", "--out", &path_text]).status.code(),
        Some(0)
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let shown = tally(&["key", "show", &path_text]);
    assert_eq!(shown.status.code(), Some(2));
    assert_eq!(
        stderr(&shown),
        format!(
            "error: key file {path_text} is open to group or others (mode 644); \
             run: chmod 600 {path_text}\n"
        )
    );
    assert_eq!(stdout(&shown), "");
}

#[test]
fn key_show_refuses_what_is_not_a_key_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.txt");
    let path_text = path.display().to_string();
    std::fs::write(&path, "hello\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let shown = tally(&["key", "show", &path_text]);
    assert_eq!(shown.status.code(), Some(2));
    assert_eq!(
        stderr(&shown),
        format!(
            "error: {path_text} is not a key file: \
             a key file holds a 64-character hex seed, got 5 characters\n"
        )
    );

    let missing = dir.path().join("missing.key").display().to_string();
    let shown = tally(&["key", "show", &missing]);
    assert_eq!(shown.status.code(), Some(2));
    assert_eq!(
        stderr(&shown),
        format!("error: reading key {missing}: No such file or directory (os error 2)\n")
    );
}

fn new_address(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name).display().to_string();
    let created = tally(&["key", "new", "--out", &path]);
    assert_eq!(created.status.code(), Some(0));
    stdout(&created).trim().to_string()
}

#[test]
fn genesis_new_writes_a_file_every_node_accepts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let alpha = new_address(dir.path(), "alpha.key");
    let beta = new_address(dir.path(), "beta.key");
    let alice = new_address(dir.path(), "alice.key");
    let out = dir.path().join("genesis.toml").display().to_string();

    let validator_alpha = format!("alpha={alpha}");
    let validator_beta = format!("beta={beta}");
    let alloc = format!("{alice}=1250.50");
    let created = tally(&[
        "genesis",
        "new",
        "--name",
        "tally-test",
        "--validator",
        &validator_alpha,
        "--validator",
        &validator_beta,
        "--alloc",
        &alloc,
        "--min-fee",
        "0.05",
        "--max-supply",
        "1000000",
        "--out",
        &out,
        "--json",
    ]);
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));

    let text = std::fs::read_to_string(&out).expect("genesis file");
    let genesis = Genesis::from_toml(&text).expect("a valid genesis");
    assert_eq!(genesis.network, "tally-test");
    assert_eq!(genesis.validators.len(), 2);
    assert_eq!(genesis.validators[1].name, "beta");
    assert_eq!(genesis.validators[1].key.to_address(), beta);
    assert_eq!(
        genesis.fee_account.to_address(),
        alpha,
        "fees default to the first validator"
    );
    assert_eq!(genesis.min_fee, 5);
    assert_eq!(genesis.max_supply, 100_000_000);
    assert_eq!(genesis.allocations[0].balance, 125_050);

    let value = json(&created);
    assert_eq!(value["network_id"], genesis.network_id().to_hex());
    assert_eq!(value["total_supply"], "1250.50");

    let again = tally(&[
        "genesis",
        "new",
        "--name",
        "x",
        "--validator",
        &validator_alpha,
    ]);
    assert_eq!(again.status.code(), Some(2), "--out is required");
    let line = stderr(&again);
    assert!(
        line.starts_with("error: ") && line.lines().count() == 1,
        "{line}"
    );
}

#[test]
fn genesis_new_names_the_bad_argument() {
    let dir = tempfile::tempdir().expect("temp dir");
    let alpha = new_address(dir.path(), "alpha.key");
    let out = dir.path().join("genesis.toml").display().to_string();
    let run = |extra: &[&str]| {
        let validator = format!("alpha={alpha}");
        let mut args = vec!["genesis", "new", "--name", "net", "--validator", &validator];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", &out]);
        let output = tally(&args);
        assert_eq!(output.status.code(), Some(2));
        assert!(!std::path::Path::new(&out).exists(), "nothing written");
        stderr(&output)
    };

    let bad_key = PublicKey::from_address("tly1bogus").expect_err("not an address");
    assert_eq!(
        run(&["--validator", "beta=tly1bogus"]),
        format!("error: --validator beta: address \"tly1bogus\": {bad_key}\n")
    );
    assert_eq!(
        run(&["--validator", "beta"]),
        "error: --validator \"beta\": expected NAME=ADDRESS\n"
    );
    assert_eq!(
        run(&["--alloc", &format!("{alpha}=12.345")]),
        format!("error: --alloc {alpha}: amount has 3 decimal places, at most 2 allowed\n")
    );
    assert_eq!(
        run(&["--alloc", &format!("{alpha}=5"), "--max-supply", "4"]),
        "error: invalid genesis: allocations add up to more than max_supply 4.00\n"
    );
    assert_eq!(
        run(&[]),
        "error: --max-supply is required when there are no allocations\n"
    );
    assert_eq!(
        run(&["--alloc", &format!("{alpha}=5"), "--decimals", "9"]),
        "error: --decimals must be between 0 and 8, got 9\n"
    );
}

/// Output piped into a reader that has gone away ends the command quietly: no panic, no
/// backtrace, just the signal's usual exit.
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let made = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["key", "new", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(made.status.success());

    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["key", "show", key.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert!(
        output.status.success() || output.status.signal() == Some(libc_sigpipe()),
        "{:?}",
        output.status
    );
}

/// SIGPIPE's number on Linux.
fn libc_sigpipe() -> i32 {
    13
}
