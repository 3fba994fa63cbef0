//! Every input kept under `fuzz/regressions/TARGET/` (a crasher the fuzzers found, fixed
//! since) and every seed under `fuzz/seeds/TARGET/` goes through the same entry as the fuzz
//! target (`fuzz/entries.rs`) on every test run: none may panic again.

#[path = "../fuzz/entries.rs"]
mod entries;

use std::path::Path;

/// Feed every file of `fuzz/regressions/TARGET`, `fuzz/seeds/TARGET` and `more` (relative
/// to the repository) to `entry`; how many there were.
fn replay(target: &str, entry: fn(&[u8]), more: &[&str]) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let regressions = format!("fuzz/regressions/{target}");
    let seeds = format!("fuzz/seeds/{target}");
    let mut count = 0;
    for dir in [regressions.as_str(), seeds.as_str()].iter().chain(more) {
        let Ok(files) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for f in files {
            let path = f.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| entry(&bytes));
            assert!(outcome.is_ok(), "{} panics again", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn validate_inputs_never_panic() {
    let plans = [
        "plans/gocd",
        "tests/fixtures/valid",
        "tests/fixtures/invalid",
    ];
    assert!(replay("validate", entries::validate, &plans) > 0);
}

#[test]
fn template_inputs_never_panic() {
    assert!(replay("template", entries::template, &[]) > 0);
}

#[test]
fn journal_inputs_never_panic() {
    assert!(replay("journal", entries::journal, &[]) > 0);
}

#[test]
fn yaml_inputs_read_the_same_with_both_readers() {
    let plans = [
        "plans/gocd",
        "plans/sites",
        "tests/fixtures/valid",
        "tests/fixtures/invalid",
    ];
    assert!(replay("yaml", entries::yaml, &plans) > 0);
}
