//! The real binary: `muster check` on good and broken seeds, and `muster serve` starting its
//! own embedded redis-server and answering HTTP.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn muster() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_muster"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn check_accepts_the_demo_city() {
    let out = muster().arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("13 regions, 32 teams, 8 plans"), "{text}");
    assert!(text.contains("1000 volunteers"), "{text}");
    // Every SMS text of the demo is counted, and fits in two segments.
    assert!(
        text.contains("sms zh-CN callout: 2 segment(s) (UCS-2")
            || text.contains("sms zh-CN callout: 1 segment(s) (UCS-2"),
        "{text}"
    );
    assert!(
        text.contains("sms en reply_accepted: 1 segment(s) (GSM-7"),
        "{text}"
    );
    assert_eq!(
        text.matches("\nsms ").count() + usize::from(text.starts_with("sms ")),
        32,
        "{text}"
    );
}

#[test]
fn check_refuses_an_sms_text_longer_than_the_segments_allowed() {
    let seed = common::seed_dir("http://127.0.0.1:9", 0);
    let zh = seed.join("templates/zh-CN.toml");
    let text = std::fs::read_to_string(&zh).unwrap();
    let long = format!("stand_down = \"{}\"", "很长".repeat(80));
    let start = text.find("\n[sms]").unwrap();
    let line = text[start..].find("\nstand_down = ").unwrap() + start + 1;
    let end = line + text[line..].find('\n').unwrap();
    std::fs::write(&zh, format!("{}{long}{}", &text[..line], &text[end..])).unwrap();
    let out = muster()
        .arg("check")
        .env("MUSTER__SEED__DIR", &seed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("templates/zh-CN.toml: sms zh-CN stand_down: 3 segment(s) (UCS-2"),
        "{err}"
    );
    assert!(err.contains("more than sms.max_segments = 2"), "{err}");
}

#[test]
fn check_names_file_and_line_of_every_problem() {
    let seed = common::seed_dir("http://127.0.0.1:9", 0);
    let plan = seed.join("plans/flood.toml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(
        &plan,
        text.replace("needed = 6", "needed = 0")
            .replace("\"public_security\"", "\"police\""),
    )
    .unwrap();
    let csv = seed.join("volunteers.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replacen("+8613900000003", "13900000003", 1)).unwrap();
    let out = muster()
        .arg("check")
        .env("MUSTER__SEED__DIR", &seed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plans/flood.toml:10: needed must be between 1 and 100000"),
        "{err}"
    );
    assert!(
        err.contains("plans/flood.toml:19: unknown team kind `police`"),
        "{err}"
    );
    assert!(
        err.contains("volunteers.csv:4: phone must be E.164"),
        "{err}"
    );
    assert!(err.contains("3 problem(s)"), "{err}");
}

#[test]
fn bad_arguments_get_usage() {
    for args in [
        &["frobnicate"][..],
        &["serve", "--role", "boss"],
        &["import", "volunteers"],
        &["check", "--no-such-flag"],
    ] {
        let out = muster().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains("try '--help'"), "{args:?}: {err}");
    }
    let out = muster().arg("frobnicate").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage: muster [OPTIONS] <COMMAND>"), "{err}");
    let out = muster().args(["serve", "--role", "boss"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("possible values: all, api, worker"), "{err}");
}

#[test]
fn every_command_has_help_and_the_binary_a_version() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["sim", "--help"],
        &["check", "--help"],
        &["import", "--help"],
        &["import", "volunteers", "--help"],
        &["audit", "--help"],
        &["audit", "verify", "--help"],
    ] {
        let out = muster().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: muster"), "{args:?}: {text}");
        assert!(text.contains("--config <FILE>"), "{args:?}: {text}");
    }
    let serve = muster().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&serve.stdout).contains("--role <ROLE>"));
    let out = muster().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("muster {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn serve_runs_its_own_redis_and_answers() {
    let data = common::temp_dir("serve");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = muster()
        .arg("serve")
        .env("MUSTER__HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("MUSTER__DATA_DIR", &data)
        .env("MUSTER__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ready = rt.block_on(async {
        let http = reqwest::Client::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/readyz")).send().await
                && r.status() == 200
            {
                let r = http
                    .post(format!("http://127.0.0.1:{port}/v1/incidents"))
                    .bearer_auth("demo-township-commander")
                    .json(&serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": "t"}))
                    .send()
                    .await
                    .unwrap();
                return Some(r.status().as_u16());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    });
    // SIGTERM: muster shuts down and stops its redis-server.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert_eq!(
        ready,
        Some(201),
        "muster serve came up and raised an incident"
    );
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    assert!(
        data.join("appendonlydir").exists(),
        "AOF is on under data_dir"
    );
    assert!(
        !data.join("redis.sock").exists(),
        "the embedded redis-server stopped"
    );
}

#[test]
fn import_through_the_binary_reports_lines_and_is_idempotent() {
    let data = common::temp_dir("import");
    let csv = data.join("registry.csv");
    let (gbk, _, _) = encoding_rs::GBK.encode(
        "姓名,手机号,所属队伍,保险有效期,资质\n\
         甲,13700000001,滨江街道救援队,2027-12-31,water_rescue:2028-01-01\n\
         乙,13700000002,没有这个队,2027-12-31,\n\
         丙,13700000003,t990101001-first_aid,2027/12/31,\n",
    );
    std::fs::write(&csv, &gbk).unwrap();
    let run = || {
        let out = muster()
            .args(["import", "volunteers"])
            .arg(&csv)
            .env("MUSTER__DATA_DIR", &data)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // No muster is running: the import starts the embedded Redis under data_dir for itself.
    let (code, text, err) = run();
    // Not on a terminal: progress is plain lines, ending at 100 %, and no bar escapes.
    assert!(err.contains("100% (3/3 rows)"), "{err}");
    assert!(!err.contains('\r') && !err.contains("[#"), "{err}");
    assert_eq!(
        code,
        Some(1),
        "a rejected row makes the exit code 1: {text}"
    );
    assert!(text.contains("3 rows (gbk)"), "{text}");
    assert!(
        text.contains("2 created, 0 updated, 0 unchanged, 1 rejected"),
        "{text}"
    );
    assert!(
        text.contains("registry.csv:3: unknown team `没有这个队`"),
        "{text}"
    );
    let (_, text, _) = run();
    assert!(
        text.contains("0 created, 0 updated, 2 unchanged, 1 rejected"),
        "{text}"
    );
    assert!(
        !data.join("redis.sock").exists(),
        "the import stopped the Redis it started"
    );
}

#[test]
fn check_refuses_an_unknown_eligibility_time_zone() {
    let out = muster()
        .arg("check")
        .env("MUSTER__ELIGIBILITY__TIME_ZONE", "Mars/Base")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("eligibility.time_zone `Mars/Base`"), "{err}");
}
