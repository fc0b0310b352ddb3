//! The `muster` command: `serve`, `sim`, `check`, `import`. Thin: parses arguments and calls
//! into the library.

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

const USAGE: &str = "\
usage:
  muster serve  [--config FILE] [--role all|api|worker]   the service: HTTP API and workers
  muster sim    [--config FILE]                           simulated volunteers answering webhooks
  muster check  [--config FILE]                           validate config and seed; exit 1 on any problem
  muster import volunteers FILE.csv [--config FILE]       bulk registry import (CSV, UTF-8 or GBK)

--config defaults to config/default.toml; every key can be overridden by an environment
variable MUSTER__SECTION__KEY, e.g. MUSTER__HTTP__ADDR=0.0.0.0:8080.";

struct Args {
    command: String,
    config: Option<PathBuf>,
    role: Role,
    rest: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("no command given")?;
    let mut args = Args {
        command,
        config: None,
        role: Role::All,
        rest: vec![],
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                args.config = Some(it.next().ok_or("--config needs a file")?.into());
            }
            "--role" => {
                let r = it.next().ok_or("--role needs all, api or worker")?;
                args.role =
                    Role::parse(&r).ok_or(format!("unknown role `{r}`: use all, api or worker"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with("--") => return Err(format!("unknown option `{s}`")),
            _ => args.rest.push(a),
        }
    }
    Ok(args)
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("muster: configuration error: {e}");
        ExitCode::from(2)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("muster: {e}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match args.command.as_str() {
        "serve" => {
            muster::telemetry::init_logging(&config.log.format, &config.log.level);
            let clock: Arc<dyn muster::clock::Clock> = match &config.engine.clock_offset_file {
                Some(path) => {
                    tracing::warn!(path = %path.display(), "the clock follows engine.clock_offset_file: for tests only");
                    Arc::new(OffsetFileClock::watch(path.clone()))
                }
                None => Arc::new(SystemClock),
            };
            match App::build(config, args.role, clock).await {
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
        "sim" => {
            muster::telemetry::init_logging(&config.log.format, &config.log.level);
            match muster::sim::run(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("muster sim: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        "check" => check(&config),
        "import" => match args.rest.as_slice() {
            [what, file] if what == "volunteers" => {
                muster::telemetry::init_logging(&config.log.format, "warn");
                match muster::app::import_volunteers(&config, std::path::Path::new(file)).await {
                    Ok(code) => ExitCode::from(code),
                    Err(e) => {
                        eprintln!("muster import: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            }
            _ => {
                eprintln!("muster import: usage: muster import volunteers FILE.csv\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
        other => {
            eprintln!("muster: unknown command `{other}`\n\n{USAGE}");
            ExitCode::from(2)
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
