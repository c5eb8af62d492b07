//! Webhook delivery benchmark: writes a burst of events (leads, through the store's normal
//! outbox path) while a dispatcher delivers them to a local receiver, and reports events
//! delivered per second and the delay from each event's write to its receipt.
//!
//! ```text
//! webhook-bench [--events 10000] [--database-url sqlite:///tmp/bench.db]
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use boltcall::events::dispatcher::{Dispatcher, DispatcherSettings};
use boltcall::events::schedule::RetrySchedule;
use boltcall::store::{NewLead, Scope, Store};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Burst events through the webhook dispatcher to a local receiver")]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    /// Database to use (a fresh temporary SQLite file when absent).
    #[arg(long)]
    database_url: Option<String>,
}

/// Receipt time of each lead id's first delivery.
type Receipts = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile_dir()?;
    let url = args
        .database_url
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));
    let store = Store::connect(&url).await.context("open the database")?;

    let receipts: Receipts = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = format!("http://{}/hook", listener.local_addr()?);
    let app = Router::new().fallback(receive).with_state(receipts.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let scope = Scope {
        workspace_id: "bench".into(),
        live: true,
    };
    store
        .create_webhook(
            &scope,
            target,
            vec!["lead.created".into()],
            "whsec_benchmark_secret".into(),
        )
        .await?;
    let settings = DispatcherSettings {
        schedule: RetrySchedule::from_secs(&[1, 2, 4]),
        timeout: Duration::from_secs(10),
        retention: Duration::from_secs(30 * 86_400),
        allow_local: true,
    };
    let dispatcher = Dispatcher::new(store.clone(), settings)?.spawn();

    let started = Instant::now();
    let mut written = HashMap::with_capacity(args.events);
    for i in 0..args.events {
        let new = NewLead {
            name: format!("Lead {i}"),
            phone: None,
            email: None,
            source: Some("api".into()),
            tags: Vec::new(),
        };
        let lead = store.create_lead(&scope, new).await?;
        written.insert(lead.id, Instant::now());
    }
    let burst_written = started.elapsed();
    loop {
        if receipts.lock().expect("receipts").len() >= args.events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let finished = started.elapsed();
    dispatcher.abort();

    let receipts = receipts.lock().expect("receipts");
    let mut lags: Vec<Duration> = written
        .iter()
        .filter_map(|(id, at)| {
            receipts
                .get(id)
                .map(|got| got.saturating_duration_since(*at))
        })
        .collect();
    lags.sort();
    let pct = |p: f64| lags[((lags.len() as f64 * p) as usize).min(lags.len() - 1)];
    println!("database: {}", url.split(':').next().unwrap_or("?"));
    println!(
        "{} events written in {:.2} s; all delivered after {:.2} s",
        args.events,
        burst_written.as_secs_f64(),
        finished.as_secs_f64()
    );
    println!(
        "throughput: {:.0} events/s delivered (burst start to last receipt)",
        args.events as f64 / finished.as_secs_f64()
    );
    println!(
        "write-to-receipt lag: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*lags.last().unwrap_or(&Duration::ZERO))
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

async fn receive(State(receipts): State<Receipts>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if let Some(id) = event["data"]["id"].as_str() {
        receipts
            .lock()
            .expect("receipts")
            .entry(id.to_string())
            .or_insert(now);
    }
    StatusCode::NO_CONTENT
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("webhook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
