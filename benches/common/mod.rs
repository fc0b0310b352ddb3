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
