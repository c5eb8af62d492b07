//! `boltcall keys …`: create, list and revoke API keys against the configured store.

use anyhow::{Context, bail};

use super::{KEY_CACHE_TTL, Plan, Store, StoreError};
use crate::cli::KeysCommand;
use crate::config::Config;

pub async fn run(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open {}",
                crate::store::redact_url(&config.database_url)
            )
        })?;
    let result = execute(&store, cmd).await;
    store.close().await;
    result
}

async fn execute(store: &Store, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create {
            plan,
            test,
            workspace,
        } => {
            let Some(plan) = Plan::parse(&plan) else {
                bail!("unknown plan {plan:?}: expected free, starter, pro or elite");
            };
            if workspace.trim().is_empty() {
                bail!("the workspace name must not be empty");
            }
            let created = store.create_key(workspace.trim(), plan, !test).await?;
            eprintln!(
                "created key {} ({} plan, {} mode, workspace {:?}); the secret is shown only once:",
                created.key.id,
                plan.name(),
                if test { "test" } else { "live" },
                created.key.workspace_name,
            );
            println!("{}", created.secret);
        }
        KeysCommand::List => {
            println!(
                "{:<26} {:<8} {:<5} {:<20} {:<16} CREATED",
                "ID", "PLAN", "MODE", "WORKSPACE", "KEY"
            );
            for key in store.list_keys().await? {
                let mode = if key.live { "live" } else { "test" };
                let created = super::time::public_ts(&key.created_at);
                let state = match &key.revoked_at {
                    Some(t) => format!(" (revoked {})", super::time::public_ts(t)),
                    None => String::new(),
                };
                println!(
                    "{:<26} {:<8} {:<5} {:<20} {:<16} {created}{state}",
                    key.id,
                    key.plan.name(),
                    mode,
                    key.workspace_name,
                    key.hint
                );
            }
        }
        KeysCommand::Revoke { id } => match store.revoke_key(&id).await {
            Ok(()) => {
                // Running servers trust a key they verified for up to KEY_CACHE_TTL: return
                // once every one of them refuses it.
                tokio::time::sleep(KEY_CACHE_TTL).await;
                println!("revoked {id}");
            }
            Err(StoreError::NotFound) => bail!("no active key with id {id:?}"),
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}
