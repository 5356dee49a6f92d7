//! Making a devnet's files: node directories with their keys and configs, demo wallets, the
//! genesis, and last the manifest, whose presence marks a finished setup.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use protocol::genesis::Allocation;
use protocol::{Decimals, Genesis, Validator};
use tally_node::config::CONFIG_TEMPLATE;
use tally_node::datadir::CONFIG_FILE;

use super::manifest::{Manifest, NodeEntry, WalletEntry};
use crate::key;

/// The devnet's network name.
pub const NETWORK_NAME: &str = "tally-devnet";

/// Each demo wallet's starting balance, in units (10,000.00 at 2 decimals).
pub const WALLET_BALANCE: u64 = 1_000_000;

/// The genesis file's name in the devnet directory.
const GENESIS_FILE: &str = "genesis.toml";

/// The folder of the demo wallets' key files.
const WALLETS_DIR: &str = "wallets";

/// What the devnet is made of.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Validator nodes.
    pub nodes: usize,
    /// Funded demo wallets.
    pub accounts: usize,
    /// Node i serves its API on `base_port + i` and peers on `base_port + 100 + i`.
    pub base_port: u16,
}

impl Shape {
    /// The API port of node `index`.
    pub fn api_port(&self, index: usize) -> u16 {
        self.base_port + index as u16
    }

    /// The peer-to-peer port of node `index`.
    pub fn p2p_port(&self, index: usize) -> u16 {
        self.base_port + 100 + index as u16
    }

    /// Every port the devnet listens on.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.nodes).flat_map(|index| [self.api_port(index), self.p2p_port(index)])
    }

    /// Refuses shapes that cannot run: no nodes, too many, or ports beyond 65535.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(1..=20).contains(&self.nodes) {
            bail!("--nodes must be from 1 to 20, not {}", self.nodes);
        }
        if !(1..=1000).contains(&self.accounts) {
            bail!("--accounts must be from 1 to 1000, not {}", self.accounts);
        }
        let highest = u32::from(self.base_port) + 100 + self.nodes as u32 - 1;
        if self.base_port < 1024 || highest > u32::from(u16::MAX) {
            bail!(
                "--base-port {} leaves no room for {} nodes: ports {} to {highest} must lie \
                 between 1024 and 65535",
                self.base_port,
                self.nodes,
                self.base_port
            );
        }
        Ok(())
    }
}

/// Creates a devnet in `dir`, which must not exist or be empty, and returns its manifest.
pub fn create(dir: &Path, shape: Shape) -> anyhow::Result<Manifest> {
    shape.check()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let mut existing =
        std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    if existing.next().is_some() {
        bail!(
            "{} is not empty but holds no devnet.json (a setup that was interrupted leaves \
             this); choose another --dir or remove it",
            dir.display()
        );
    }

    // Each node's identity first: every config lists the others as bootstrap peers.
    let mut identities = Vec::with_capacity(shape.nodes);
    for index in 0..shape.nodes {
        let node_dir = dir.join(format!("node{index}"));
        let created = tally_node::init::init(&node_dir)
            .with_context(|| format!("initialising {}", node_dir.display()))?;
        identities.push((node_dir, created));
    }
    let p2p_addresses: Vec<String> = identities
        .iter()
        .enumerate()
        .map(|(index, (_, created))| {
            format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                shape.p2p_port(index),
                created.peer_id
            )
        })
        .collect();

    let mut nodes = Vec::with_capacity(shape.nodes);
    for (index, (node_dir, created)) in identities.iter().enumerate() {
        let bootstrap: Vec<String> = p2p_addresses
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, address)| address.clone())
            .collect();
        let config = node_config(shape.api_port(index), shape.p2p_port(index), &bootstrap)?;
        let config_path = node_dir.join(CONFIG_FILE);
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        nodes.push(NodeEntry {
            name: format!("node{index}"),
            api: format!("http://127.0.0.1:{}", shape.api_port(index)),
            p2p: p2p_addresses[index].clone(),
            address: created.public_key.to_address(),
            dir: node_dir.clone(),
        });
    }

    let wallets = create_wallets(&dir.join(WALLETS_DIR), shape.accounts)?;
    let genesis = genesis(&identities, &wallets)?;
    let genesis_path = dir.join(GENESIS_FILE);
    std::fs::write(&genesis_path, genesis.to_toml())
        .with_context(|| format!("writing {}", genesis_path.display()))?;

    let manifest = Manifest {
        network_id: genesis.network_id().to_string(),
        genesis: genesis_path,
        base_port: shape.base_port,
        nodes,
        wallets,
    };
    manifest.write(&dir)?;
    Ok(manifest)
}

/// The commented default config with the devnet's ports, peers and genesis path.
///
/// The template's own lines are replaced, so every comment stays; a template line that is
/// not found is an error rather than a config silently left at its default.
pub fn node_config(api_port: u16, p2p_port: u16, bootstrap: &[String]) -> anyhow::Result<String> {
    let quoted: Vec<String> = bootstrap.iter().map(|peer| format!("{peer:?}")).collect();
    let replacements = [
        (
            "genesis = \"genesis.toml\"",
            "genesis = \"../genesis.toml\"".to_string(),
        ),
        (
            "listen = [\"/ip4/0.0.0.0/tcp/26656\"]",
            format!("listen = [\"/ip4/127.0.0.1/tcp/{p2p_port}\"]"),
        ),
        (
            "bootstrap = []",
            format!("bootstrap = [{}]", quoted.join(", ")),
        ),
        (
            "listen = \"127.0.0.1:8080\"",
            format!("listen = \"127.0.0.1:{api_port}\""),
        ),
    ];

    let mut config = CONFIG_TEMPLATE.to_string();
    for (line, replacement) in replacements {
        if config.matches(line).count() != 1 {
            return Err(anyhow!(
                "the node config template has no single line {line:?}"
            ));
        }
        config = config.replace(line, &replacement);
    }
    Ok(config)
}

/// Makes `count` wallet key files in `dir`.
fn create_wallets(dir: &Path, count: usize) -> anyhow::Result<Vec<WalletEntry>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    (0..count)
        .map(|index| {
            let path: PathBuf = dir.join(format!("wallet{index}.key"));
            let key = key::create(&path)?;
            Ok(WalletEntry {
                address: key.public_key().to_address(),
                key: path,
            })
        })
        .collect()
}

/// The devnet's genesis: the nodes as validators in order, each wallet funded, fees to the
/// first validator.
fn genesis(
    identities: &[(PathBuf, tally_node::init::Initialised)],
    wallets: &[WalletEntry],
) -> anyhow::Result<Genesis> {
    let allocations = wallets
        .iter()
        .map(|wallet| {
            Ok(Allocation {
                account: wallet.address.parse()?,
                balance: WALLET_BALANCE,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let genesis = Genesis {
        network: NETWORK_NAME.into(),
        decimals: Decimals::new(2).expect("2 decimal places are allowed"),
        min_fee: 1,
        fee_account: identities[0].1.public_key,
        max_supply: WALLET_BALANCE * wallets.len() as u64,
        max_block_transfers: 1000,
        max_block_bytes: 1 << 20,
        validators: identities
            .iter()
            .enumerate()
            .map(|(index, (_, created))| Validator {
                name: format!("node{index}"),
                key: created.public_key,
            })
            .collect(),
        allocations,
    };
    genesis.validate().context("the devnet genesis")?;
    Ok(genesis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_node::config::Config;

    #[test]
    fn node_config_sets_ports_peers_and_genesis() {
        let key = protocol::SecretKey::from_seed(&[7; 32]).public_key();
        let peer = tally_node::network::peer_id(&key);
        let peers = vec![format!("/ip4/127.0.0.1/tcp/7201/p2p/{peer}")];
        let text = node_config(7100, 7200, &peers).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, &text).unwrap();

        let config = Config::load(&path, std::iter::empty()).unwrap();
        assert_eq!(config.node.genesis, "../genesis.toml");
        assert_eq!(
            config.p2p.listen,
            vec!["/ip4/127.0.0.1/tcp/7200".to_string()]
        );
        assert_eq!(config.p2p.bootstrap, peers);
        assert_eq!(config.api.listen, "127.0.0.1:7100");
        // Everything else keeps its default.
        let defaults = Config::default();
        assert_eq!(config.consensus, defaults.consensus);
        assert_eq!(config.mempool, defaults.mempool);
    }

    #[test]
    fn shapes_that_cannot_run_are_refused() {
        let shape = |nodes, accounts, base_port| Shape {
            nodes,
            accounts,
            base_port,
        };
        assert!(shape(4, 10, 7100).check().is_ok());
        assert_eq!(
            shape(0, 10, 7100).check().unwrap_err().to_string(),
            "--nodes must be from 1 to 20, not 0"
        );
        assert_eq!(
            shape(4, 0, 7100).check().unwrap_err().to_string(),
            "--accounts must be from 1 to 1000, not 0"
        );
        assert_eq!(
            shape(4, 10, 65500).check().unwrap_err().to_string(),
            "--base-port 65500 leaves no room for 4 nodes: ports 65500 to 65603 must lie \
             between 1024 and 65535"
        );
    }

    #[test]
    fn create_makes_a_valid_federation_and_refuses_a_used_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("net");
        let shape = Shape {
            nodes: 3,
            accounts: 2,
            base_port: 17100,
        };
        let manifest = create(&dir, shape).unwrap();

        assert_eq!(manifest.nodes.len(), 3);
        assert_eq!(manifest.wallets.len(), 2);
        assert_eq!(manifest.nodes[2].api, "http://127.0.0.1:17102");
        let genesis = crate::files::read_genesis(&manifest.genesis).unwrap();
        assert_eq!(genesis.network_id().to_string(), manifest.network_id);
        assert_eq!(genesis.total_supply(), 2 * WALLET_BALANCE);
        assert_eq!(
            genesis.validators[1].key.to_address(),
            manifest.nodes[1].address
        );
        assert_eq!(Manifest::read(&dir).unwrap(), manifest);

        let again = create(&dir, shape).unwrap_err().to_string();
        assert!(
            again.ends_with(
                "is not empty but holds no devnet.json (a setup that was interrupted leaves \
                 this); choose another --dir or remove it"
            ),
            "{again}"
        );
    }
}
