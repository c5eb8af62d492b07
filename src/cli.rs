//! The `boltcall` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "boltcall",
    version,
    about = "Self-hosted realtime voice-agent telephony engine"
)]
pub struct Cli {
    /// Configuration file (default: ./boltcall.toml when present). Environment variables win.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the engine: the /v1 API, carrier WebSockets and the SIP listener.
    Serve(ServeArgs),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply database migrations and exit.
    Migrate,
    /// Install the offline speech models into the data directory.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Replay a recorded fixture call through the whole pipeline and print a JSON report.
    Replay(ReplayArgs),
    /// Create an API key and print the operator console link that signs in with it.
    Console(ConsoleArgs),
}

#[derive(Args)]
pub struct ConsoleArgs {
    /// Workspace the key belongs to (created when new).
    #[arg(long, default_value = "default")]
    pub workspace: String,
    /// Make a live key (sk_live_…) instead of a test key.
    #[arg(long)]
    pub live: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Save live calls' caller audio as new fixture calls in DIR.
    #[arg(long, value_name = "DIR")]
    pub record_fixtures: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret once.
    Create {
        /// Plan: free, starter, pro or elite.
        #[arg(long, default_value = "starter")]
        plan: String,
        /// Make a test key (sk_test_…): sees test data only, never places calls or sends messages.
        #[arg(long)]
        test: bool,
        /// Workspace the key belongs to (created when new).
        #[arg(long, default_value = "default")]
        workspace: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by its id.
    Revoke {
        /// The key id shown by `boltcall keys list`.
        id: String,
    },
}

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Fetch, verify, extract and convert the pinned offline models (idempotent).
    Install,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// A fixture call directory (holding scenario.toml and the caller WAV).
    pub fixture: PathBuf,
    /// Stop call time while the speech providers and the brain work, so the call goes the
    /// same on any machine however loaded (latencies then read as zero). Without it, call
    /// time runs at wall speed while they work and the report's latencies are real.
    #[arg(long)]
    pub stepped: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                if args.record_fixtures.is_some() {
                    config.record_fixtures = args.record_fixtures;
                }
                crate::server::serve(config)
                    .await
                    .map(|_| ExitCode::SUCCESS)
            }
            Command::Keys(cmd) => crate::store::keys_cli::run(&config, cmd)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Migrate => crate::store::Store::connect(&config.database_url)
                .await
                .map(|_| ExitCode::SUCCESS)
                .map_err(Into::into),
            Command::Models(ModelsCommand::Install) => {
                crate::providers::models::install(&config.data_dir)
                    .await
                    .map(|_| ExitCode::SUCCESS)
            }
            Command::Console(args) => crate::console::cli::run(&config, &args.workspace, args.live)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Replay(args) => {
                let pacing = if args.stepped {
                    crate::replay::Pacing::Stepped
                } else {
                    crate::replay::Pacing::Replay
                };
                crate::replay::run(&config, &args.fixture, pacing).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
