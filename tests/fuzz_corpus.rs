//! Replays the fuzz targets' committed inputs through the same entry
//! points the fuzzer drives (`shoal::fuzz`), in the ordinary test run and
//! without fuzz tooling: the seeds (`fuzz/seeds/TARGET/`, real requests)
//! and every input a fuzz run ever crashed on (`fuzz/regressions/TARGET/`,
//! kept after the fix). A panic names the file.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("ascii", shoal::fuzz::ascii),
    ("meta", shoal::fuzz::meta),
    ("binary", shoal::fuzz::binary),
    ("session", shoal::fuzz::session),
    ("admin_json", shoal::fuzz::admin_json),
];

/// Runs every file of `dir/TARGET/` through its target; returns how many.
fn replay(dir: &str, name: &str, target: Target) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let result = std::panic::catch_unwind(|| target(&data));
        assert!(result.is_ok(), "{} panicked", file.display());
    }
    files.len()
}

#[test]
fn committed_inputs_run_clean() {
    for (name, target) in TARGETS {
        let seeds = replay("fuzz/seeds", name, target);
        assert!(seeds >= 5, "fuzz/seeds/{name}: {seeds} seeds");
        replay("fuzz/regressions", name, target);
    }
}
