//! Wiring: seed → Redis (embedded or configured) → engine workers → HTTP API, and an orderly
//! shutdown. `App::build` returns a running service; tests build it in-process on port 0 with
//! a manual clock.

use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::token::TokenSigner;
use crate::engine::{self, Ctx};
use crate::notify::webhook::WebhookSender;
use crate::redis_server::EmbeddedRedis;
use crate::seed::Seed;
use crate::store::Store;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Which parts this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// HTTP API and workers (the default).
    All,
    /// Only the HTTP API.
    Api,
    /// Only the workers.
    Worker,
}

/// A running muster.
pub struct App {
    /// Where the API listens (`None` for `--role worker`).
    pub addr: Option<SocketAddr>,
    /// The shared context.
    pub ctx: Arc<Ctx>,
    shutdown: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
    embedded: Option<EmbeddedRedis>,
}

impl App {
    /// Loads the seed, connects to (or starts) Redis, starts the workers and the API.
    pub async fn build(config: Config, role: Role, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        let seed = match Seed::load(&config.seed.dir) {
            Ok(s) => s,
            Err(problems) => {
                let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                bail!(
                    "the seed in {} has {} problem(s):\n{}",
                    config.seed.dir.display(),
                    list.len(),
                    list.join("\n")
                );
            }
        };
        let problems = config.problems();
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        let mut embedded = None;
        let url = match &config.redis.url {
            Some(u) => u.clone(),
            None => {
                let mut e = EmbeddedRedis::start(
                    &config.redis.server_bin,
                    &config.data_dir,
                    &config.redis.appendfsync,
                )
                .await?;
                e.supervise();
                let u = e.url();
                tracing::info!(data_dir = %config.data_dir.display(), "embedded redis-server started");
                embedded = Some(e);
                u
            }
        };
        let store = Store::connect(&url, &config.redis.prefix, config.engine.partitions)
            .await
            .with_context(|| format!("cannot connect to Redis at {}", redact_url(&url)))?;
        let default_roster = seed.default_roster.clone();
        let written = store
            .seed(
                &seed.teams,
                &seed.volunteers,
                clock.now_ms(),
                |_, members| default_roster.as_ref().and_then(|d| d.for_members(members)),
            )
            .await?;
        tracing::info!(
            regions = seed.regions.len(),
            teams = seed.teams.len(),
            plans = seed.plans.len(),
            volunteers = seed.volunteers.len(),
            newly_registered = written,
            "seed loaded"
        );
        let secret = store
            .token_secret(config.security.token_secret.as_deref())
            .await?;
        let listener = if role != Role::Worker {
            let l = tokio::net::TcpListener::bind(&config.http.addr)
                .await
                .with_context(|| format!("cannot listen on {}", config.http.addr))?;
            Some(l)
        } else {
            None
        };
        let addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let public_url = config.public_url(
            &addr
                .map(|a| a.to_string())
                .unwrap_or_else(|| config.http.addr.clone()),
        );
        let (tx, rx) = watch::channel(false);
        let consumer = config
            .engine
            .consumer
            .clone()
            .unwrap_or_else(|| format!("muster-{}", uuid::Uuid::new_v4().simple()));
        let tokens = Arc::new(api::auth::index(&seed.tokens));
        let ctx = Arc::new(Ctx {
            store,
            webhook: WebhookSender::new(
                &config.webhook.secret,
                Duration::from_millis(config.webhook.timeout_ms),
                config.webhook.concurrency.max(1),
            ),
            sms: config
                .sms
                .gateway
                .iter()
                .map(|g| Arc::new(crate::notify::sms::Gateway::new(g.clone())))
                .collect(),
            drill_sms: engine::drill_gateway(&config)
                .map(|g| Arc::new(crate::notify::sms::Gateway::new(g))),
            rosters: Default::default(),
            in_flight: Arc::new(Semaphore::new(config.webhook.concurrency.max(1))),
            delivery_entries: Arc::new(Semaphore::new(engine::notifier::ENTRIES_IN_FLIGHT)),
            seed: Arc::new(seed),
            clock,
            signer: TokenSigner::new(&secret),
            public_url,
            consumer,
            shutdown: rx,
            config: Arc::new(config),
        });
        let workers = if role != Role::Api {
            engine::spawn_all(ctx.clone())
        } else {
            vec![]
        };
        let server = listener.map(|l| {
            let state = AppState {
                ctx: ctx.clone(),
                tokens,
                metrics: crate::telemetry::metrics(),
            };
            let router = api::router(state);
            let mut stop = ctx.shutdown.clone();
            tokio::spawn(async move {
                let r = axum::serve(
                    api::listener::ProblemListener(l),
                    router.into_make_service_with_connect_info::<api::listener::Peer>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
                if let Err(e) = r {
                    tracing::error!(error = %e, "http server failed");
                }
            })
        });
        if let Some(a) = addr {
            tracing::info!(addr = %a, public_url = %ctx.public_url, ?role, "muster serving");
        }
        Ok(App {
            addr,
            ctx,
            shutdown: tx,
            workers,
            server,
            embedded,
        })
    }

    /// Runs until SIGINT or SIGTERM, then stops in order.
    pub async fn run_until_stopped(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.stop().await;
    }

    /// Stops accepting work, lets in-flight deliveries finish (up to the webhook timeout),
    /// stops the workers and the embedded Redis.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
        }
        for w in self.workers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
        }
        let all = self.ctx.config.webhook.concurrency.max(1) as u32;
        let wait = Duration::from_millis(self.ctx.config.webhook.timeout_ms + 1000);
        // Delivery entries finish after their sends: wait for both.
        let entries = engine::notifier::ENTRIES_IN_FLIGHT as u32;
        let _ = tokio::time::timeout(wait, async {
            let _e = self.ctx.delivery_entries.acquire_many(entries).await;
            let _s = self.ctx.in_flight.acquire_many(all).await;
        })
        .await;
        if let Some(mut e) = self.embedded.take() {
            e.stop().await;
        }
    }
}

/// A Redis URL without its password.
fn redact_url(url: &str) -> String {
    match url.split_once('@') {
        Some((scheme_user, host)) => {
            let scheme = scheme_user.split("://").next().unwrap_or("redis");
            format!("{scheme}://***@{host}")
        }
        None => url.to_string(),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `muster import volunteers FILE`: imports into the deployment's Redis (`redis.url`, or the
/// embedded server of a running `muster serve`, or one started just for the import), with a
/// progress bar on a terminal. Prints the report; exit code 0 when every row was good, 1 when
/// some were rejected (the good ones are kept).
pub async fn import_volunteers(config: &Config, file: &std::path::Path) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let seed = Seed::load(&config.seed.dir).map_err(|ps| {
        anyhow::anyhow!(
            "the seed has problems (run `muster check`): {}",
            ps.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let (store, embedded) = cli_store(config).await?;
    let now = crate::clock::wall_ms();
    let default_roster = seed.default_roster.clone();
    store
        .seed(&seed.teams, &seed.volunteers, now, |_, m| {
            default_roster.as_ref().and_then(|d| d.for_members(m))
        })
        .await?;
    let teams = store.all_teams().await?;
    let mut lk =
        crate::import::Lookup::new(teams, &seed.regions, &seed.templates, Box::new(|_| true));
    // The command line acts with the operator's access to Redis: recorded as such.
    lk.audit = Some(crate::store::audit::AuditEntry {
        at: now,
        actor: format!("muster import ({})", file.display()),
        role: "admin".into(),
        action: "volunteer.import".into(),
        request: "cli".into(),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let mut progress = ImportProgress::new(std::io::stderr().is_terminal());
    let report = crate::import::import(&store, &bytes, &lk, now, |done, total| {
        progress.update(done, total)
    })
    .await?;
    progress.finish();
    if let Some(mut e) = embedded {
        e.stop().await;
    }
    println!(
        "{}: {} rows ({}) in {:.1} s: {} created, {} updated, {} unchanged, {} rejected",
        file.display(),
        report.rows,
        report.encoding,
        started.elapsed().as_secs_f64(),
        report.created,
        report.updated,
        report.unchanged,
        report.rejected.len()
    );
    if !report.ignored_columns.is_empty() {
        println!("ignored columns: {}", report.ignored_columns.join(", "));
    }
    for r in &report.rejected {
        println!("{}:{}: {}", file.display(), r.line, r.reason);
    }
    Ok(if report.rejected.is_empty() { 0 } else { 1 })
}

/// The store a command-line tool works on: the configured Redis, or the embedded one's socket
/// (started for the tool when muster is not running).
async fn cli_store(config: &Config) -> anyhow::Result<(Store, Option<EmbeddedRedis>)> {
    let mut embedded = None;
    let url = match &config.redis.url {
        Some(u) => u.clone(),
        None => {
            let sock = config.data_dir.join("redis.sock");
            let url = format!("redis+unix://{}", sock.display());
            let running = match redis::Client::open(url.as_str()) {
                Ok(c) => c.get_multiplexed_async_connection().await.is_ok(),
                Err(_) => false,
            };
            if running {
                url
            } else {
                let e = EmbeddedRedis::start(
                    &config.redis.server_bin,
                    &config.data_dir,
                    &config.redis.appendfsync,
                )
                .await?;
                let u = e.url();
                embedded = Some(e);
                u
            }
        }
    };
    let store = Store::connect(&url, &config.redis.prefix, config.engine.partitions)
        .await
        .with_context(|| format!("cannot connect to Redis at {}", redact_url(&url)))?;
    Ok((store, embedded))
}

/// `muster audit verify`: walks every audit chain with `audit.key`, printing each chain's
/// entries, and the first entry that was changed, removed or inserted; 1 if any chain broke.
pub async fn audit_verify(config: &Config) -> anyhow::Result<u8> {
    if config.audit.key.trim().is_empty() {
        anyhow::bail!("audit.key is not set: nothing can be verified without it");
    }
    let key = config.audit.key_bytes();
    let (store, embedded) = cli_store(config).await?;
    let mut broken = 0;
    let (mut total, mut pending) = (0usize, 0usize);
    for name in store.keys.audit_chains() {
        let chain = store.audit_chain(&name).await?;
        if chain.entries.is_empty() && chain.macs.is_empty() && chain.head.is_none() {
            continue;
        }
        let (brk, unsealed) =
            crate::domain::audit::verify(&key, &chain.entries, &chain.macs, chain.head.as_ref());
        total += chain.entries.len();
        pending += unsealed;
        match brk {
            Some(b) => {
                broken += 1;
                println!("{name}: BROKEN: {b}");
            }
            None => println!(
                "{name}: ok, {} entries{}",
                chain.entries.len(),
                if unsealed > 0 {
                    format!(" ({unsealed} not sealed yet)")
                } else {
                    String::new()
                }
            ),
        }
    }
    if let Some(mut e) = embedded {
        e.stop().await;
    }
    if broken > 0 {
        println!("{broken} chain(s) broken");
        Ok(1)
    } else {
        println!("audit log intact: {total} entries ({pending} not sealed yet)");
        Ok(0)
    }
}

/// The import's progress: a bar on a terminal (indicatif), otherwise one plain line per 10 %
/// so a log of a scripted import shows it advancing without a wall of carriage returns.
struct ImportProgress {
    bar: Option<indicatif::ProgressBar>,
    /// The last tenth reported as a plain line.
    tenth: usize,
}

impl ImportProgress {
    fn new(tty: bool) -> ImportProgress {
        let bar = tty.then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "[{bar:30}] {pos}/{len} rows ({per_sec}, {eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("#>-"),
            );
            b
        });
        ImportProgress { bar, tenth: 0 }
    }

    fn update(&mut self, done: usize, total: usize) {
        let total = total.max(1);
        match &self.bar {
            Some(b) => {
                b.set_length(total as u64);
                b.set_position(done as u64);
            }
            None => {
                let tenth = (done * 10 / total).min(10);
                if tenth > self.tenth {
                    self.tenth = tenth;
                    eprintln!("{}% ({done}/{total} rows)", tenth * 10);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
