//! `boltcall keys …`.

use crate::cli::KeysCommand;
use crate::config::Config;

pub async fn run(_config: &Config, _cmd: KeysCommand) -> anyhow::Result<()> {
    anyhow::bail!("keys: not built yet")
}
