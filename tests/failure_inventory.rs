//! docs/FAILURES.md is the map of every AWS call the functions make against every failure
//! shape AWS documents for it. This keeps it honest: every call in the code has rows, every
//! test a row names exists, and the totals it states are the table's.

use snapglow_local::stack::project::project_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One row of the doc's table.
#[derive(Debug)]
struct Row {
    file: String,
    function: String,
    operation: String,
    injected: String,
    test: Option<String>,
}

/// A call the code makes: (file, enclosing fn, operation).
type Site = (String, String, String);

/// The SDK builder methods that send a request, and their operations.
const OPERATIONS: [(&str, &str); 21] = [
    ("get_item", "GetItem"),
    ("put_item", "PutItem"),
    ("update_item", "UpdateItem"),
    ("delete_item", "DeleteItem"),
    ("query", "Query"),
    ("batch_get_item", "BatchGetItem"),
    ("transact_write_items", "TransactWriteItems"),
    ("put_records", "PutRecords"),
    ("send_message", "SendMessage"),
    ("put_object", "PutObject"),
    ("get_object", "GetObject"),
    ("scan", "Scan"),
    ("batch_write_item", "BatchWriteItem"),
    ("delete_objects", "DeleteObjects"),
    ("put_object_tagging", "PutObjectTagging"),
    ("list_objects_v2", "ListObjectsV2"),
    ("admin_delete_user", "AdminDeleteUser"),
    ("admin_get_user", "AdminGetUser"),
    ("post_to_connection", "PostToConnection"),
    ("delete_object", "DeleteObject"),
    ("detect_moderation_labels", "DetectModerationLabels"),
];

/// The text between backticks, in order.
fn quoted(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn rows(doc: &str) -> Vec<Row> {
    let table = doc
        .split("\n## Pairs\n")
        .nth(1)
        .expect("the doc has a ## Pairs section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    table
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 6, "a row has 6 cells: {line}");
            let site = quoted(cells[0]);
            Row {
                file: site.first().cloned().unwrap_or_default(),
                function: site.get(1).cloned().unwrap_or_default(),
                operation: cells[1].rsplit(' ').next().unwrap_or_default().to_owned(),
                injected: cells[4].to_owned(),
                test: quoted(cells[5]).into_iter().next(),
            }
        })
        .collect()
}

/// A file's code without its `#[cfg(test)] mod tests` (the convention here: at the end).
fn without_tests(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text)
}

/// Every request the functions send, by where it is sent from. Presigning builds a URL and
/// sends nothing; in-memory twins (`memory.rs`) and test tooling (`stream.rs`, used by the
/// tests' harness) are not the functions' calls.
fn sites(root: &Path) -> BTreeSet<Site> {
    let mut found = BTreeSet::new();
    let mut files = Vec::new();
    for dir in ["functions", "shared/src"] {
        collect(&root.join(dir), &mut files);
    }
    for path in files {
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        if !relative.ends_with(".rs")
            || relative.contains("/tests")
            || relative.ends_with("memory.rs")
            || relative.ends_with("testing.rs")
            || relative == "shared/src/stream.rs"
            || relative.contains("/render/")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = without_tests(&text).lines().collect();
        for (at, line) in lines.iter().enumerate() {
            for (method, operation) in OPERATIONS {
                if !line.contains(&format!(".{method}()")) {
                    continue;
                }
                let next = lines[at..lines.len().min(at + 12)].join("\n");
                if next.contains(".presigned(") {
                    continue;
                }
                let function = lines[..=at]
                    .iter()
                    .rev()
                    .find_map(|l| {
                        let after = l.split("fn ").nth(1)?;
                        Some(after.split(['(', '<']).next()?.trim().to_owned())
                    })
                    .unwrap_or_default();
                found.insert((relative.clone(), function, operation.to_owned()));
            }
        }
    }
    found
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Every `fn` name in the project's Rust sources.
fn functions(root: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["functions", "shared", "local/src", "tests", "bench/src"] {
        collect(&root.join(dir), &mut files);
    }
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.split("fn ")
                .skip(1)
                .filter_map(|after| Some(after.split(['(', '<']).next()?.trim().to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What is wrong with `doc` against the code's `sites` and the project's `functions`.
fn problems(doc: &str, sites: &BTreeSet<Site>, functions: &BTreeSet<String>) -> Vec<String> {
    let rows = rows(doc);
    let mut problems = Vec::new();
    let covered: BTreeSet<Site> = rows
        .iter()
        .map(|r| (r.file.clone(), r.function.clone(), r.operation.clone()))
        .collect();
    for site in sites.difference(&covered) {
        problems.push(format!(
            "{} `{}` sends {} but docs/FAILURES.md has no row for it: add its failure shapes, handling and tests",
            site.0, site.1, site.2
        ));
    }
    for row in &rows {
        match (&row.test, row.injected.as_str()) {
            (Some(test), "W" | "U") if functions.contains(test) => {}
            (Some(test), _) => problems.push(format!(
                "{} `{}` {}: the test `{test}` does not exist (or its row is not marked W or U)",
                row.file, row.function, row.operation
            )),
            (None, "—") => {}
            (None, other) => problems.push(format!(
                "{} `{}` {}: marked {other} but names no test",
                row.file, row.function, row.operation
            )),
        }
    }
    let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &rows {
        *counted.entry(row.injected.as_str()).or_default() += 1;
    }
    let totals = doc.split("\n## Totals\n").nth(1).unwrap_or_default();
    for (mark, label) in [("W", "`W`"), ("U", "`U`"), ("—", "`—`")] {
        let expected = format!("{label} ");
        let stated = totals
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("- {expected}")))
            .and_then(|l| l.rsplit(": ").next())
            .and_then(|n| n.trim_end_matches('.').parse::<usize>().ok());
        let actual = counted.get(mark).copied().unwrap_or(0);
        if stated != Some(actual) {
            problems.push(format!(
                "## Totals states {stated:?} rows injected {mark}; the table has {actual}"
            ));
        }
    }
    let pairs = format!("**Pairs:** {} rows", rows.len());
    if !totals.contains(&pairs) {
        problems.push(format!("## Totals must say {pairs}"));
    }
    problems
}

#[test]
fn every_call_the_functions_make_has_its_failure_shapes_and_every_named_test_exists() {
    // Prepare
    let root = project_root();
    let doc = std::fs::read_to_string(root.join("docs/FAILURES.md")).expect("docs/FAILURES.md");
    let sites = sites(&root);
    assert!(
        sites.len() >= 20,
        "the scan finds the functions' calls: {sites:?}"
    );

    // Act
    let problems = problems(&doc, &sites, &functions(&root));

    // Assess
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn a_call_without_rows_a_missing_test_and_wrong_totals_are_caught() {
    // Prepare: the doc as it is, against a code base with one more call, and with one row's
    // test renamed and one row dropped
    let root = project_root();
    let doc = std::fs::read_to_string(root.join("docs/FAILURES.md")).unwrap();
    let mut sites = sites(&root);
    sites.insert((
        "functions/api/src/store.rs".into(),
        "delete_image".into(),
        "DeleteItem".into(),
    ));
    let first_test = rows(&doc)
        .into_iter()
        .find_map(|r| r.test)
        .expect("a row names a test");
    let renamed = doc.replacen(&format!("`{first_test}`"), "`a_test_nobody_wrote`", 1);
    let first_row = doc
        .lines()
        .find(|l| l.starts_with("| `"))
        .unwrap()
        .to_owned();
    let dropped = doc.replacen(&format!("{first_row}\n"), "", 1);

    // Act
    let functions = functions(&root);
    let found = [
        problems(&doc, &sites, &functions),
        problems(&renamed, &sites, &functions),
        problems(&dropped, &sites, &functions),
    ];

    // Assess
    assert!(
        found[0]
            .iter()
            .any(|p| p.contains("`delete_image` sends DeleteItem"))
    );
    assert!(found[1].iter().any(|p| p.contains("a_test_nobody_wrote")));
    assert!(found[2].iter().any(|p| p.contains("## Totals")));
}
