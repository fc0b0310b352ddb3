//! What the benchmarks share (a directory, so Cargo does not take it for a benchmark).

use std::path::{Path, PathBuf};

/// Copies the demo city's plans, templates and `files` (e.g. `regions.toml`) into
/// `dir/seed`, and returns that directory; each benchmark adds its own teams and volunteers.
pub fn demo_seed(dir: &Path, files: &[&str]) -> PathBuf {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo");
    let seed = dir.join("seed");
    for sub in ["plans", "templates"] {
        std::fs::create_dir_all(seed.join(sub)).unwrap();
        for e in std::fs::read_dir(demo.join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), seed.join(sub).join(e.file_name())).unwrap();
        }
    }
    for f in files {
        std::fs::copy(demo.join(f), seed.join(f)).unwrap();
    }
    seed
}

/// A seed of the demo city's regions and tokens with one township rescue team (`big`, in
/// 990101001, no roster: all on call) of `n` members, each with a webhook on `receiver`.
#[allow(dead_code)] // the fan-out and board benchmarks use it; every benchmark compiles this
pub fn big_team_seed(dir: &Path, receiver: &str, n: usize, team_name: &str) -> PathBuf {
    use std::fmt::Write as _;
    let seed = demo_seed(dir, &["regions.toml", "tokens.toml"]);
    std::fs::write(
        seed.join("teams.toml"),
        format!("[[team]]\nid = \"big\"\nname = \"{team_name}\"\nkind = \"rescue\"\nregion = \"990101001\"\n"),
    )
    .unwrap();
    let mut csv = String::from(
        "id,name,phone,locale,webhook,teams,home_region,status,insurance_valid_until,qualifications\n",
    );
    for i in 0..n {
        writeln!(csv, "b{i},志愿者{i},+86150{i:08},zh-CN,{receiver}/hooks/b{i},big,990101001,active,2099-12-31,water_rescue:2099-12-31").unwrap();
    }
    std::fs::write(seed.join("volunteers.csv"), csv).unwrap();
    seed
}

/// The Redis a benchmark runs on: a private `redis-server` (AOF everysec) or a local Cluster
/// of three masters and three replicas (AOF everysec on each).
#[allow(dead_code)] // not every benchmark uses it
pub enum BenchRedis {
    Single(muster::redis_server::EmbeddedRedis),
    Cluster(muster::local_cluster::LocalCluster),
}

#[allow(dead_code)]
impl BenchRedis {
    /// One node under `dir`, or a Cluster when `cluster`.
    pub async fn start(dir: &Path, cluster: bool) -> BenchRedis {
        if cluster {
            BenchRedis::Cluster(muster::local_cluster::LocalCluster::start().await)
        } else {
            BenchRedis::Single(
                muster::redis_server::EmbeddedRedis::start(
                    "redis-server",
                    &dir.join("redis"),
                    "everysec",
                )
                .await
                .unwrap(),
            )
        }
    }

    pub fn url(&self) -> String {
        match self {
            BenchRedis::Single(r) => r.url(),
            BenchRedis::Cluster(c) => c.url(),
        }
    }

    /// "single" or "cluster".
    pub fn name(&self) -> &'static str {
        match self {
            BenchRedis::Single(_) => "single redis-server",
            BenchRedis::Cluster(_) => "3-master cluster",
        }
    }

    /// CPU seconds (user + sys) every redis-server process has used so far.
    pub async fn cpu_seconds(&self) -> f64 {
        let urls: Vec<String> = match self {
            BenchRedis::Single(r) => vec![r.url()],
            BenchRedis::Cluster(c) => c
                .nodes
                .iter()
                .map(|n| format!("redis://{}", n.addr()))
                .collect(),
        };
        let mut sum = 0.0;
        for u in urls {
            let mut c = redis::Client::open(u)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let info: String = redis::cmd("INFO")
                .arg("cpu")
                .query_async(&mut c)
                .await
                .unwrap();
            sum += info
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("used_cpu_user:")
                        .or_else(|| l.strip_prefix("used_cpu_sys:"))
                })
                .filter_map(|v| v.trim().parse::<f64>().ok())
                .sum::<f64>();
        }
        sum
    }

    /// Bytes the masters hold (`used_memory`, summed over the masters of a Cluster).
    pub async fn used_memory(&self) -> u64 {
        let urls: Vec<String> = match self {
            BenchRedis::Single(r) => vec![r.url()],
            BenchRedis::Cluster(c) => c
                .nodes
                .iter()
                .map(|n| format!("redis://{}", n.addr()))
                .collect(),
        };
        let mut sum = 0;
        for u in urls {
            let mut c = redis::Client::open(u)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let info: String = redis::cmd("INFO")
                .arg("all")
                .query_async(&mut c)
                .await
                .unwrap();
            if !info.contains("role:master") {
                continue;
            }
            sum += info
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        sum
    }

    pub async fn stop(self) {
        match self {
            BenchRedis::Single(mut r) => r.stop().await,
            BenchRedis::Cluster(c) => drop(c),
        }
    }
}

/// muster (API and workers, the system clock) on a private `redis-server` (AOF everysec) under
/// `dir`, serving one township rescue team of `n` members whose webhooks go to `receiver`
/// (see [`big_team_seed`]); logs only errors.
#[allow(dead_code)] // not every benchmark uses it
pub async fn big_team_app(
    dir: &Path,
    receiver: &str,
    n: usize,
) -> (muster::app::App, muster::redis_server::EmbeddedRedis) {
    let redis =
        muster::redis_server::EmbeddedRedis::start("redis-server", &dir.join("redis"), "everysec")
            .await
            .unwrap();
    let app = big_team_app_on(dir, receiver, n, &redis.url()).await;
    (app, redis)
}

/// The same on the Redis at `url`.
#[allow(dead_code)] // not every benchmark uses it
pub async fn big_team_app_on(dir: &Path, receiver: &str, n: usize, url: &str) -> muster::app::App {
    let seed_dir = big_team_seed(dir, receiver, n, "big");
    let mut config = muster::config::Config::default();
    config.audit.key = "bench-audit-chain-key".into();
    config.http.addr = "127.0.0.1:0".into();
    config.redis.url = Some(url.to_string());
    config.seed.dir = seed_dir;
    config.log.level = "error".into();
    config.webhook.secret = "whsec_YmVuY2htYXJrLXNlY3JldC1ieXRlcw==".into();
    // BENCH_WEBHOOK_CONCURRENCY: muster's send concurrency, to compare with the bare sender's.
    if let Some(c) = std::env::var("BENCH_WEBHOOK_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.webhook.concurrency = c;
    }
    muster::app::App::build(
        config,
        muster::app::Role::All,
        std::sync::Arc::new(muster::clock::SystemClock),
    )
    .await
    .unwrap()
}

/// A benchmark's figures, written to `target/bench/NAME.json` when it ends: each a value with
/// its unit and, where it has one, the baseline measured in the same run and the ratio.
#[allow(dead_code)] // not every benchmark writes one yet
pub struct Report {
    bench: &'static str,
    figures: Vec<serde_json::Value>,
}

#[allow(dead_code)]
impl Report {
    pub fn new(bench: &'static str) -> Report {
        Report {
            bench,
            figures: Vec::new(),
        }
    }

    /// A figure without a baseline.
    pub fn add(&mut self, name: &str, value: f64, unit: &str) {
        self.figures.push(serde_json::json!({
            "name": name, "value": value, "unit": unit,
        }));
    }

    /// A figure beside its baseline (same unit, same run): the ratio is value ÷ baseline.
    pub fn ratio(&mut self, name: &str, value: f64, unit: &str, baseline: &str, base: f64) {
        self.figures.push(serde_json::json!({
            "name": name, "value": value, "unit": unit,
            "baseline": baseline, "baseline_value": base,
            "ratio": if base > 0.0 { value / base } else { 0.0 },
        }));
    }

    /// Writes the file (and says where).
    pub fn write(&self) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.json", self.bench));
        let doc = serde_json::json!({
            "bench": self.bench,
            "at": jiff::Timestamp::now().to_string(),
            "machine": machine(),
            "figures": self.figures,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        println!("figures written to {}", path.display());
    }
}

/// The machine the figures come from: cores and load average when written.
fn machine() -> serde_json::Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    serde_json::json!({"cores": cores, "loadavg": load.trim()})
}

/// The webhook receiver of the fan-out benchmark: a local nginx (Debian's package) answering
/// `location /hooks/ { return 204; }`, counting deliveries from its access log (one line per
/// request), so the receiver costs little and runs outside the benchmark's process. One
/// worker: on two cores, the other is left to muster and Redis. `capture`, when given, is an
/// upstream that `/hooks/b0` is passed to (to keep one body muster sent).
#[allow(dead_code)] // the fan-out benchmark uses it
pub struct Nginx {
    child: std::process::Child,
    pub url: String,
    log: std::fs::File,
    seen: usize,
    dir: PathBuf,
}

#[allow(dead_code)]
impl Nginx {
    /// Starts nginx under `dir` on a free loopback port; panics with what to do if there is no
    /// nginx (`make bench` and `make test` install it).
    pub async fn start(dir: &Path, capture: Option<&str>) -> Nginx {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nginx not found: the fan-out benchmark's receiver is Debian's nginx (`make bench` and `make test` install it: apt-get install nginx)");
        let dir = dir.join("nginx");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.display();
        let capture = capture
            .map(|u| format!("location = /hooks/b0 {{ proxy_pass {u}; }}"))
            .unwrap_or_default();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log error;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  log_format counted '$status';\n  access_log {d}/access.log counted;\n\
               keepalive_requests 1000000;\n  keepalive_timeout 120s;\n\
               client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
               fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
               scgi_temp_path {d}/tmp/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    {capture}\n\
                 location /hooks/ {{ return 204; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        std::fs::write(dir.join("access.log"), "").unwrap();
        let child = std::process::Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        let addr = format!("127.0.0.1:{port}");
        let t0 = std::time::Instant::now();
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "nginx did not listen on {addr}: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let log = std::fs::File::open(dir.join("access.log")).unwrap();
        Nginx {
            child,
            url: format!("http://{addr}"),
            log,
            seen: 0,
            dir,
        }
    }

    /// Requests logged so far (each answered; the log holds only their status). Reads what
    /// was appended since the last call.
    pub fn delivered(&mut self) -> usize {
        use std::io::Read;
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.log.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.seen += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            }
        }
        self.seen
    }

    /// Requests logged with a status other than 2xx, read from the whole log.
    pub fn failed(&self) -> usize {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('2'))
            .count()
    }

    /// CPU seconds (user + sys) nginx's worker and master have used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let master = self.child.id();
        let mut pids = vec![master];
        // The worker is the master's child.
        if let Ok(kids) = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        {
            pids.extend(
                kids.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        pids.iter()
            .map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
                let f: Vec<&str> = rest.split_whitespace().collect();
                let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                (t(11) + t(12)) / 100.0
            })
            .sum()
    }
}

impl Drop for Nginx {
    /// TERM to the master (it stops its worker; a KILL would leave the worker running).
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// This process's CPU time so far (user + system), seconds.
#[allow(dead_code)] // not every benchmark uses it
pub fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) — utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
