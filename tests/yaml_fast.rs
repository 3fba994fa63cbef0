//! The fast YAML reader (`src/load/fast.rs`) against serde-saphyr: wherever the fast reader
//! accepts a text it must build exactly serde-saphyr's tree (values, key texts, every span),
//! and it must accept the plans drplan ships and the 10,000-step benchmark plan.

use drplan::load::readers_agree;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::Cell;
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The YAML texts in the repository: every `.yaml` file, the fuzz seeds, and every ```yaml
/// block of the docs.
fn repository_texts() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "plans",
        "tests",
        "fuzz/seeds",
        "fuzz/regressions/validate",
        "docs",
    ] {
        files_under(&root.join(dir), &mut files);
    }
    files.push(root.join("README.md"));
    let mut texts = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        match f.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => texts.push((name, text)),
            Some("md") => {
                let mut rest = text.as_str();
                while let Some(start) = rest.find("```yaml\n") {
                    rest = &rest[start + 8..];
                    let end = rest.find("```").unwrap_or(rest.len());
                    texts.push((format!("{name} (a yaml block)"), rest[..end].to_string()));
                    rest = &rest[end..];
                }
            }
            // Fuzz seeds: a plan, or a plan, a NUL byte and a site.
            _ if name.contains("fuzz/") => {
                for part in text.split('\0') {
                    texts.push((name.clone(), part.to_string()));
                }
            }
            _ => {}
        }
    }
    texts
}

#[test]
fn every_yaml_text_in_the_repository_reads_the_same_with_both_readers() {
    let texts = repository_texts();
    assert!(texts.len() > 40, "found only {} YAML texts", texts.len());
    let mut accepted = 0;
    for (name, text) in &texts {
        match readers_agree(text) {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(
        accepted * 2 > texts.len(),
        "the fast reader took only {accepted} of {} texts",
        texts.len()
    );
}

#[test]
fn the_fast_reader_takes_the_shipped_plans_and_sites() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_under(&root.join("plans"), &mut files);
    files.retain(|f| f.extension().is_some_and(|e| e == "yaml"));
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(readers_agree(&text), Ok(true), "{}", f.display());
    }
}

/// `benches/run --only validate`'s plan: 100 chains of 100 `sleep` steps.
fn benchmark_plan() -> String {
    let mut s = String::from("version: 1\nname: big\nroles: [a]\nsteps:");
    for c in 0..100 {
        for i in 0..100 {
            let _ = write!(
                s,
                "\n  - id: s{c}_{i}\n    on: a\n    action: sleep\n    with: {{ duration: 1ms }}"
            );
            if i > 0 {
                let _ = write!(s, "\n    needs: [s{c}_{}]", i - 1);
            }
        }
    }
    s.push('\n');
    s
}

#[test]
fn the_fast_reader_takes_the_10k_step_benchmark_plan() {
    assert_eq!(readers_agree(&benchmark_plan()), Ok(true));
}

/// What the fast reader must leave to serde-saphyr, and what it must take.
#[test]
fn the_subset_boundary() {
    for declined in [
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: !custom x\n",
        "<<: {a: 1}\nb: 2\n",
        "a: 1\na: 2\n",
        "1: a\n\"1\": b\n",
        "? [a]\n: b\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: 1\n---\nb: 2\n",
        "a: [1, 2\n",
        "a: 1e5\n",
        "a: 0x1F\n",
        "a: 1_000\n",
        "a: +1\n",
        "a: .inf\n",
        "a: 007\n",
        "a: 12345678901234567890\n",
        "",
        "\u{feff}a: 1\n",
    ] {
        assert_eq!(readers_agree(declined), Ok(false), "{declined:?}");
    }
    for accepted in [
        "a: 1\nb: -2\nc: 1.5\nd: ~\ne:\nf: true\ng: yes\nh: 10.0.0.1\ni: 20ms\nj: 2026-12-01\n",
        "- \"q\\t\\u00e9\"\n- 'it''s'\n- |-\n  x\n  y\n- >+\n  folded\n\n",
        "{a: [1, {b: c}], 1: x, true: y, ~: z, 2.5: w}\n",
        "# c\na: 1 # c\r\nb:\r\n  - x\r\n",
        "just text\n",
        "---\na: 1\n...\n",
    ] {
        assert_eq!(readers_agree(accepted), Ok(true), "{accepted:?}");
    }
}

/// Constructs whose spans are easy to get wrong: whichever reader takes them, the trees agree.
#[test]
fn unusual_layouts_read_the_same() {
    for text in [
        "[a: 1]\n",
        "{a, b: 1}\n",
        "{a: 1,}\n",
        "a: [\n  1,\n  2,\n]\n",
        "? a\n: b\n",
        "? |\n  k\n: v\n",
        "? \n: v\n",
        "--- |\n  x\n",
        "a: |\n\n  x\n",
        "a: >\n  x\n\n  y\n",
        "- - - x\n",
        "a:\n- b\n- c\n",
        "  a: 1\n  b: 2\n",
        "a:    1   \n",
        "a: 1\t\n",
        "a:\t1\n",
        "- a\n-\n- b\n",
        "a: b\n...\n# end\n",
        "a: b\n\n\n",
        "a: \"\\u263A\"\n",
        "'a': 1\n\"b\": 2\n",
        "a:\n  # only a comment\nb: 1\n",
        "a: x\n  y\n  z\n",
        "a: x\r\n  y\r\n",
        "a: -1.50\nb: 0.0\nc: -0\n",
    ] {
        assert!(readers_agree(text).is_ok(), "{:?}", readers_agree(text));
    }
}

// ------------------------------------------------------------------ generated documents

#[derive(Debug, Clone)]
enum Gen {
    Scalar(&'static str),
    Block(&'static str),
    MultiLine(&'static str, &'static str),
    Seq(Vec<Gen>, bool),
    Map(Vec<(&'static str, Gen)>, bool),
}

/// Scalars in every form the fast reader resolves and many it declines.
const SCALARS: &[&str] = &[
    "0",
    "1",
    "-1",
    "42",
    "-0",
    "007",
    "1.5",
    "-0.5",
    "0.0",
    "-0.0",
    "3.14159",
    "1.",
    ".5",
    "1e5",
    "1E-3",
    "1_000",
    "0x1F",
    "0X1F",
    "0o17",
    "0b101",
    "+3",
    "+.5",
    ".inf",
    "-.inf",
    ".nan",
    "-.NaN",
    "inf",
    "nan",
    "Infinity",
    "123456789012345",
    "1234567890123456789",
    "12345678901234567890",
    "9223372036854775807",
    "-9223372036854775808",
    "1.2.3",
    "10.0.0.1",
    "2026-12-01",
    "1-2",
    "20ms",
    "-x",
    "-",
    "~",
    "null",
    "Null",
    "NULL",
    "nUll",
    "",
    "true",
    "True",
    "TRUE",
    "tRue",
    "false",
    "False",
    "FALSE",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Yes",
    "hello world",
    "a-b",
    "héllo ünïcode ✓",
    "x:y",
    "a # not",
    "/srv/x",
    "{{ params.dir }}",
    "\"\"",
    "''",
    "\"1\"",
    "'true'",
    "\"a\\tb\\u00e9\\n\\\"\"",
    "'it''s'",
    "\"~\"",
    "'null'",
    "\"multi\n  line\"",
    "'x\n\n  y'",
    "\"\\x41\\N\\_\"",
];

const KEYS: &[&str] = &[
    "a", "b", "id", "with", "on", "1", "-2", "1.5", "2.50", "true", "False", "~", "null", "\"k\"",
    "'k'", "\"1\"", "ключ", "a b", "x.y", "007", "1e3", "\"<<\"", "<<", "yes",
];

const BLOCKS: &[&str] = &["|", "|-", "|+", ">", ">-", ">+", "|2", ">1-"];
const LINES: &[(&str, &str)] = &[
    ("first", "second"),
    ("line one", "line two # not a comment"),
    ("1", "2"),
    ("true", "x"),
];

fn gen_tree() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        6 => prop::sample::select(SCALARS).prop_map(Gen::Scalar),
        1 => prop::sample::select(BLOCKS).prop_map(Gen::Block),
        1 => prop::sample::select(LINES).prop_map(|(a, b)| Gen::MultiLine(a, b)),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..5), any::<bool>())
                .prop_map(|(v, flow)| Gen::Seq(v, flow)),
            (
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5),
                any::<bool>()
            )
                .prop_map(|(v, flow)| Gen::Map(v, flow)),
        ]
    })
}

/// Where comments go and what the line breaks are.
#[derive(Debug, Clone, Copy)]
struct Style {
    comments: bool,
    crlf: bool,
    marker: bool,
    compact_seq: bool,
}

fn flow(g: &Gen, out: &mut String) {
    match g {
        Gen::Scalar(s) => out.push_str(s),
        Gen::Block(_) | Gen::MultiLine(..) => out.push_str("\"was a block\""),
        Gen::Seq(items, _) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Gen::Map(entries, _) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                flow(v, out);
            }
            out.push('}');
        }
    }
}

fn is_block_collection(g: &Gen) -> bool {
    match g {
        Gen::Seq(items, f) => !f && !items.is_empty(),
        Gen::Map(entries, f) => !f && !entries.is_empty(),
        _ => false,
    }
}

/// `g` after `key:` or `- ` at indentation `indent` (the inline part, then lines below).
fn value(g: &Gen, indent: usize, st: Style, out: &mut String) {
    let pad = " ".repeat(indent + 2);
    match g {
        Gen::Block(header) => {
            let _ = write!(out, " {header}\n{pad}  text\n{pad}more\n\n");
            if header.contains('+') {
                out.push('\n');
            }
        }
        Gen::MultiLine(a, b) => {
            let _ = writeln!(out, " {a}\n{pad}{b}");
        }
        g if is_block_collection(g) => {
            if st.comments {
                out.push_str(" # nested");
            }
            out.push('\n');
            block(g, indent + 2, st, out);
        }
        g => {
            out.push(' ');
            flow(g, out);
            if st.comments {
                out.push_str(" # after");
            }
            out.push('\n');
        }
    }
}

/// A block collection at `indent`, one line per entry.
fn block(g: &Gen, indent: usize, st: Style, out: &mut String) {
    let pad = " ".repeat(indent);
    match g {
        Gen::Seq(items, _) => {
            for item in items {
                if st.comments {
                    let _ = writeln!(out, "{pad}# an item");
                }
                if is_block_collection(item) && st.compact_seq {
                    // `- key: v` / `- - x`: the child's first line shares the dash's line.
                    let mut child = String::new();
                    block(item, indent + 2, st, &mut child);
                    let _ = write!(out, "{pad}- {}", &child[indent + 2..]);
                } else {
                    out.push_str(&pad);
                    out.push('-');
                    value(item, indent, st, out);
                }
            }
        }
        Gen::Map(entries, _) => {
            for (k, v) in entries {
                if st.comments {
                    let _ = writeln!(out, "{pad}# an entry");
                }
                let _ = write!(out, "{pad}{k}:");
                value(v, indent, st, out);
            }
        }
        g => value(g, indent, st, out),
    }
}

fn render(g: &Gen, st: Style) -> String {
    let mut out = String::new();
    if st.comments {
        out.push_str("# a document\n");
    }
    if st.marker {
        out.push_str("---\n");
    }
    if is_block_collection(g) {
        block(g, 0, st, &mut out);
    } else {
        flow(g, &mut out);
        out.push('\n');
    }
    if st.crlf {
        out = out.replace('\n', "\r\n");
    }
    out
}

#[test]
fn generated_documents_read_the_same_with_both_readers() {
    let style = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(comments, crlf, marker, compact_seq)| Style {
            comments,
            crlf,
            marker,
            compact_seq,
        },
    );
    let cases = 3000;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = Cell::new(0u32);
    runner
        .run(&(gen_tree(), style), |(g, st)| {
            let text = render(&g, st);
            match readers_agree(&text) {
                Ok(taken) => {
                    accepted.set(accepted.get() + u32::from(taken));
                    Ok(())
                }
                Err(e) => Err(TestCaseError::fail(e)),
            }
        })
        .unwrap();
    // Duplicate and unusual keys and numbers make many documents decline; most must not.
    assert!(
        accepted.get() * 3 > cases,
        "the fast reader took only {} of {cases} generated documents",
        accepted.get()
    );
}

/// Hostile YAML through `drplan validate`: texts the fast reader must decline (nesting past
/// its depth, an alias bomb) end as serde-saphyr ends them — a located YAML error, exit 2, at
/// once — and nesting past the fast reader's depth but within serde-saphyr's is still read.
#[test]
fn hostile_yaml_is_declined_and_refused_as_before() {
    let head = "version: 1\nname: x\nroles: [a]\n";
    let block = |depth: usize| {
        let mut s = format!("{head}steps:\n");
        for i in 0..depth {
            let _ = writeln!(s, "{}k{i}:", "  ".repeat(i + 1));
        }
        let _ = writeln!(s, "{}v", "  ".repeat(depth + 1));
        s
    };
    let mut bomb = format!("{head}a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        let _ = writeln!(bomb, "a{i}: &a{i} [{refs}]");
    }
    bomb.push_str("steps: *a9\n");
    let cases = [
        (
            "flow",
            format!(
                "{head}steps: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            "invalid YAML: recursion limit exceeded",
        ),
        (
            "block40",
            block(40),
            "`steps` must be an array, found a mapping",
        ),
        (
            "block100",
            block(100),
            "invalid YAML: budget breached: Depth",
        ),
        ("bomb", bomb, "invalid YAML: budget breached"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, text, message) in cases {
        assert_eq!(
            readers_agree(&text),
            Ok(false),
            "{name}: the fast reader must decline"
        );
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drplan"))
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: expected {message:?} in {stderr}"
        );
        assert!(
            stderr.contains(&format!("{name}.yaml:")),
            "{name}: no location in {stderr}"
        );
    }
}
