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

/// muster (API and workers, the system clock) on a private `redis-server` (AOF everysec) under
/// `dir`, serving one township rescue team of `n` members whose webhooks go to `receiver`
/// (see [`big_team_seed`]); logs only errors.
#[allow(dead_code)] // not every benchmark uses it
pub async fn big_team_app(
    dir: &Path,
    receiver: &str,
    n: usize,
) -> (muster::app::App, muster::redis_server::EmbeddedRedis) {
    let seed_dir = big_team_seed(dir, receiver, n, "big");
    let redis =
        muster::redis_server::EmbeddedRedis::start("redis-server", &dir.join("redis"), "everysec")
            .await
            .unwrap();
    let mut config = muster::config::Config::default();
    config.audit.key = "bench-audit-chain-key".into();
    config.http.addr = "127.0.0.1:0".into();
    config.redis.url = Some(redis.url());
    config.seed.dir = seed_dir;
    config.log.level = "error".into();
    config.webhook.secret = "whsec_YmVuY2htYXJrLXNlY3JldC1ieXRlcw==".into();
    let app = muster::app::App::build(
        config,
        muster::app::Role::All,
        std::sync::Arc::new(muster::clock::SystemClock),
    )
    .await
    .unwrap();
    (app, redis)
}
