use super::*;

fn ex(p: &[&str]) -> Vec<String> {
    p.iter().map(std::string::ToString::to_string).collect()
}

fn file(md5: &str) -> Entry {
    Entry {
        kind: 'f',
        mode: "644".into(),
        owner: "go:go".into(),
        link: String::new(),
        md5: Some(md5.into()),
        mtime: 0,
    }
}

fn dir() -> Entry {
    Entry {
        kind: 'd',
        mode: "755".into(),
        owner: "go:go".into(),
        link: String::new(),
        md5: None,
        mtime: 0,
    }
}

fn tree(entries: &[(&str, Entry)]) -> Manifest {
    entries
        .iter()
        .map(|(p, e)| (p.to_string(), e.clone()))
        .collect()
}

#[test]
fn unanchored_names_match_at_any_depth() {
    let pats = ex(&["db.properties"]);
    assert!(excluded("db.properties", &pats));
    assert!(excluded("sub/db.properties", &pats));
    assert!(!excluded("db.properties.bak", &pats));
    assert!(!excluded("xdb.properties", &pats));
}

#[test]
fn globs_stay_within_a_name_and_directories_exclude_their_contents() {
    let pats = ex(&["*.bak", "plugins/external", "/top-only"]);
    assert!(excluded("a.bak", &pats));
    assert!(excluded("deep/er/a.bak", &pats));
    assert!(excluded("a.bak/inside", &ex(&["*.ba?"])));
    assert!(excluded("plugins/external", &pats));
    assert!(excluded("plugins/external/x.jar", &pats));
    assert!(excluded("go/plugins/external/x.jar", &pats));
    assert!(!excluded("plugins/bundled/x.jar", &pats));
    assert!(excluded("top-only", &pats));
    assert!(excluded("top-only/inside", &pats));
    assert!(!excluded("sub/top-only", &pats));
    assert!(!excluded("", &pats));
    assert!(excluded("a/b", &ex(&["*"])));
    assert!(!excluded("a/b", &ex(&["a*b"])));
    assert!(!excluded("ab", &ex(&["a?c"])));
    assert!(excluded("abc", &ex(&["a?c"])));
}

#[test]
fn manifest_parses_records_and_md5s() {
    let raw = "d\x00755\x00go\x00go\x001\x00\x00\x00f\x00644\x00go\x00go\x001700000000\x00\x00a b\x00l\x00777\x00go\x00go\x002\x00a b\x00ln\x00MD5\x00d41d8cd98f00b204e9800998ecf8427e  ./a b\x00";
    let m = parse_manifest(raw.as_bytes()).unwrap().unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m[""].kind, 'd');
    assert_eq!(
        m["a b"].md5.as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e")
    );
    assert_eq!(m["ln"].link, "a b");
    assert_eq!(m["a b"].mtime, 1_700_000_000);
    assert_eq!(parse_manifest(b"ABSENT\x00").unwrap(), None);
    assert!(parse_manifest(b"f\x00644").is_err());
}

#[test]
fn identical_trees_need_nothing_and_excluded_files_are_never_touched() {
    let src = tree(&[
        ("", dir()),
        ("cruise-config.xml", file("1")),
        ("db.properties", file("src")),
    ]);
    let dest = tree(&[
        ("", dir()),
        ("cruise-config.xml", file("1")),
        ("db.properties", file("dest")),
    ]);
    let p = plan(&src, Some(&dest), &ex(&["db.properties"]), true).unwrap();
    assert_eq!(p, SyncPlan::default());
    // Without the exclude, db.properties would be carried over.
    let p = plan(&src, Some(&dest), &[], true).unwrap();
    assert_eq!(p.transfer, ["db.properties"]);
}

#[test]
fn changes_additions_attributes_and_deletions() {
    let mut chmod = file("same");
    chmod.mode = "600".into();
    let src = tree(&[
        ("", dir()),
        ("changed", file("new")),
        ("added", file("a")),
        ("mode", chmod),
        ("newdir", dir()),
        ("newdir/f", file("f")),
    ]);
    let dest = tree(&[
        ("", dir()),
        ("changed", file("old")),
        ("mode", file("same")),
        ("stale", dir()),
        ("stale/x", file("x")),
        ("db.properties", file("keep")),
    ]);
    let pats = ex(&["db.properties"]);
    let p = plan(&src, Some(&dest), &pats, true).unwrap();
    assert_eq!(
        p.ops,
        vec![
            Op::Del("stale".into()),
            Op::Put("added".into()),
            Op::Put("changed".into()),
            Op::Attr("mode".into(), "600".into(), "go:go".into()),
            Op::Dir("newdir".into(), "755".into(), "go:go".into()),
            Op::Put("newdir/f".into()),
        ]
    );
    assert_eq!(p.transfer, ["added", "changed", "newdir/f"]);
    assert_eq!(p.deleted, ["stale"]);
    // Without `delete`, what the source lacks stays.
    let p = plan(&src, Some(&dest), &pats, false).unwrap();
    assert!(p.deleted.is_empty());
}

#[test]
fn a_directory_holding_excluded_files_is_emptied_not_removed() {
    let src = tree(&[("", dir())]);
    let dest = tree(&[
        ("", dir()),
        ("d", dir()),
        ("d/db.properties", file("k")),
        ("d/other", file("o")),
    ]);
    let p = plan(&src, Some(&dest), &ex(&["db.properties"]), true).unwrap();
    assert_eq!(p.ops, vec![Op::Del("d/other".into())]);
}

#[test]
fn type_changes_replace_and_an_absent_destination_is_created() {
    let src = tree(&[("", dir()), ("x", file("1")), ("y", dir())]);
    let dest = tree(&[
        ("", dir()),
        ("x", dir()),
        ("x/in", file("2")),
        ("y", file("3")),
    ]);
    let p = plan(&src, Some(&dest), &[], false).unwrap();
    assert_eq!(
        p.ops,
        vec![
            Op::Del("y".into()),
            Op::Del("x".into()),
            Op::Put("x".into()),
            Op::Dir("y".into(), "755".into(), "go:go".into()),
        ]
    );
    let p = plan(&src, None, &[], false).unwrap();
    assert_eq!(
        p.ops[0],
        Op::Dir(String::new(), "755".into(), "go:go".into())
    );
    assert_eq!(p.changed.len(), 3);
}

#[test]
fn replacing_a_directory_that_holds_excluded_files_is_refused() {
    let src = tree(&[("", dir()), ("x", file("1"))]);
    let dest = tree(&[("", dir()), ("x", dir()), ("x/db.properties", file("2"))]);
    assert!(plan(&src, Some(&dest), &ex(&["db.properties"]), false).is_err());
}
