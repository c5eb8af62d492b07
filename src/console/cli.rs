//! `boltcall console`: creates an API key and prints the console link that signs in with it.

use anyhow::{Context, bail};

use crate::config::Config;
use crate::store::{Plan, Store};

pub async fn run(config: &Config, workspace: &str, live: bool) -> anyhow::Result<()> {
    if workspace.trim().is_empty() {
        bail!("the workspace name must not be empty");
    }
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open {}",
                crate::store::redact_url(&config.database_url)
            )
        })?;
    let created = store
        .create_key(workspace.trim(), Plan::Starter, live)
        .await;
    store.close().await;
    let created = created?;
    eprintln!(
        "created {} key {} for workspace {:?} (revoke it with `boltcall keys revoke {}`); \
         open this link while `boltcall serve` runs:",
        if live { "live" } else { "test" },
        created.key.id,
        created.key.workspace_name,
        created.key.id,
    );
    println!("{}", console_link(&config.public_url(), &created.secret));
    Ok(())
}

/// The key rides in the fragment: browsers never send it to the server or in a referrer,
/// and the page removes it from the address bar once read.
fn console_link(public_url: &str, secret: &str) -> String {
    format!("{public_url}/console#key={secret}")
}
