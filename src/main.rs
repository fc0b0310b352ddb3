//! The `muster` command: `serve`, `sim`, `check`, `import`. Thin: parses arguments and calls
//! into the library.

use clap::{Parser, Subcommand, ValueEnum};
use muster::app::{App, Role};
use muster::clock::{OffsetFileClock, SystemClock};
use muster::config::Config;
use muster::seed::Seed;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc: the fan-out allocates many small, short-lived buffers on several threads, where
/// glibc's allocator spent a third of the process's time (measured with `perf`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An emergency volunteer mobilization dispatcher.
///
/// Every configuration key can be overridden by an environment variable
/// MUSTER__SECTION__KEY, e.g. MUSTER__HTTP__ADDR=0.0.0.0:8080.
#[derive(Parser, Debug)]
#[command(name = "muster", version, about, long_about)]
struct Cli {
    /// The configuration file (defaults to config/default.toml).
    #[arg(short, long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The service: HTTP API and all workers in one process.
    Serve {
        /// Which parts this process runs: the HTTP API, the workers, or both.
        #[arg(long, value_enum, default_value_t = RoleArg::All)]
        role: RoleArg,
    },
    /// The simulator: an SMS gateway and a volunteer population answering webhooks and SMS.
    Sim,
    /// Validates config, regions, plans and templates; prints every problem with its file and
    /// line; exit 1 on any.
    Check,
    /// Bulk registry import.
    #[command(subcommand)]
    Import(ImportWhat),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditWhat),
}

#[derive(Subcommand, Debug)]
enum AuditWhat {
    /// Walks every chain of the audit log with `audit.key`; names the first entry that was
    /// changed, removed or inserted; exit 1 if any.
    Verify,
}

#[derive(Subcommand, Debug)]
enum ImportWhat {
    /// Volunteers from a CSV file (UTF-8 or GBK, Chinese or English headers); bad rows are
    /// reported by line, good rows kept; exit 1 if any row was rejected.
    Volunteers {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    /// HTTP API and workers.
    All,
    /// Only the HTTP API.
    Api,
    /// Only the workers.
    Worker,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::All => Role::All,
            RoleArg::Api => Role::Api,
            RoleArg::Worker => Role::Worker,
        }
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("muster: configuration error: {e}");
        ExitCode::from(2)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cli.command {
        Command::Serve { role } => {
            muster::telemetry::init_logging(&config.log.format, &config.log.level);
            let clock: Arc<dyn muster::clock::Clock> = match &config.engine.clock_offset_file {
                Some(path) => {
                    tracing::warn!(path = %path.display(), "the clock follows engine.clock_offset_file: for tests only");
                    Arc::new(OffsetFileClock::watch(path.clone()))
                }
                None => Arc::new(SystemClock),
            };
            match App::build(config, role.into(), clock).await {
                Ok(app) => {
                    app.run_until_stopped().await;
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("muster: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Sim => {
            muster::telemetry::init_logging(&config.log.format, &config.log.level);
            match muster::sim::run(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("muster sim: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check => check(&config),
        Command::Audit(AuditWhat::Verify) => {
            muster::telemetry::init_logging(&config.log.format, "warn");
            match muster::app::audit_verify(&config).await {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("muster audit verify: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Import(ImportWhat::Volunteers { file }) => {
            muster::telemetry::init_logging(&config.log.format, "warn");
            match muster::app::import_volunteers(&config, &file).await {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("muster import: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(config: &Config) -> ExitCode {
    let mut problems: Vec<String> = config
        .problems()
        .into_iter()
        .map(|p| format!("config: {p}"))
        .collect();
    match Seed::load(&config.seed.dir) {
        Ok(seed) => {
            if problems.is_empty() {
                println!(
                    "ok: {} regions, {} teams, {} plans, {} locales, {} tokens, {} volunteers in {}",
                    seed.regions.len(),
                    seed.teams.len(),
                    seed.plans.len(),
                    seed.templates.locales.len(),
                    seed.tokens.len(),
                    seed.volunteers.len(),
                    config.seed.dir.display()
                );
            }
            // SMS texts, rendered with the seed's longest region name, a 16-character title
            // and 4-digit reply codes.
            let region = seed
                .regions
                .iter()
                .map(|r| r.name.as_str())
                .max_by_key(|n| n.chars().count())
                .unwrap_or("");
            let sample = muster::domain::template::MessageVars {
                title: "河堤出现管涌险情需紧急抢护转移",
                kind: "earthquake",
                level: 1,
                region,
                team_kind: "psych_support",
                link: "https://muster.example.org/a/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                code: "9999",
                codes: "1234, 5678, 9999",
                name: "欧阳志愿",
                drill: true,
            };
            let max = config.sms.max_segments;
            for (locale, kind, enc, units, segments) in seed.templates.sms_report(&sample) {
                let line =
                    format!("sms {locale} {kind}: {segments} segment(s) ({enc}, {units} units)");
                if segments > max {
                    problems.push(format!(
                        "{}: {line}: more than sms.max_segments = {max}",
                        config
                            .seed
                            .dir
                            .join("templates")
                            .join(format!("{locale}.toml"))
                            .display()
                    ));
                } else {
                    println!("{line}");
                }
            }
        }
        Err(ps) => problems.extend(ps.iter().map(|p| p.to_string())),
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("{} problem(s)", problems.len());
        ExitCode::FAILURE
    }
}
