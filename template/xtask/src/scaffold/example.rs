//! The example resource `notes` is what `cargo xtask scaffold notes
//! title:string:200 body:text:10000` writes, except for the differences
//! listed here, each with its reason. So the example people read and the
//! generator they run cannot drift apart: a change to either fails this test
//! until the other follows or the difference is listed.
//!
//! Files are compared item by item (a function, a type, an `impl`, the
//! imports, the module's docs; a statement in SQL), after `rustfmt`. An
//! item the list does not name must be the same in both; a listed one must
//! really differ, so the list cannot go stale.

use std::{collections::BTreeMap, fmt::Write as _, fs, io::Write as _, path::Path, process::Command};

use super::{edit, render, spec::Resource};

/// The command the example answers to.
const COMMAND: &str = "notes title:string:200 body:text:10000";

/// How an item of the example stands to the scaffold's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Only in the example.
    Added,
    /// In both, different.
    Changed,
    /// Only in the scaffold's output.
    Dropped,
}

use Change::{Added, Changed, Dropped};

/// One intended difference: the file, the item (as `item_key` names it),
/// how it differs, and why.
struct Difference {
    file: &'static str,
    item: &'static str,
    change: Change,
    why: &'static str,
}

const fn differs(file: &'static str, item: &'static str, change: Change, why: &'static str) -> Difference {
    Difference { file, item, change, why }
}

const SERVICE: &str = "src/notes.rs";
const QUERIES: &str = "src/db/notes.rs";
const ROUTES: &str = "src/http/routes/notes.rs";
const TESTS: &str = "tests/api/notes.rs";
const MIGRATION: &str = "migrations/0003_notes.sql";
const ERRORS: &str = "src/http/error.rs";

/// Every way the example is not the scaffold's output. Most come from one
/// feature the scaffold does not offer: a note its owner marks confidential
/// keeps its body encrypted at rest (`encryption`).
const DIFFERENCES: &[Difference] = &[
    // The table predates the scaffold, and a migration once applied never
    // changes: its columns carry no CHECK (the domain types bound them, and
    // a sealed body is longer than its text), and 0007 added `confidential`.
    differs(MIGRATION, "docs", Changed, "written for the example before the scaffold existed"),
    differs(MIGRATION, "CREATE TABLE notes", Changed, "no CHECKs: sealed bodies outgrow the bound"),
    // The queries take and return bodies as stored (sealed when confidential).
    differs(QUERIES, "docs", Changed, "says that bodies arrive sealed"),
    differs(QUERIES, "imports", Changed, "stored forms are plain text, not domain types"),
    differs(QUERIES, "pub struct Note", Dropped, "the row is `NoteRow`: its body may be sealed"),
    differs(QUERIES, "pub struct NoteRow", Added, "the stored row, with `confidential`"),
    differs(QUERIES, "pub struct NewNote", Dropped, "a new note is written as `StoredNote`"),
    differs(QUERIES, "pub struct StoredNote", Added, "the body in its stored form"),
    differs(QUERIES, "pub struct NoteChanges", Dropped, "an update writes the whole note (`replace`)"),
    differs(QUERIES, "macro_rules! notes_columns", Changed, "plus `confidential`"),
    differs(QUERIES, "pub async fn insert", Changed, "binds the stored form"),
    differs(QUERIES, "pub async fn find", Changed, "returns `NoteRow`"),
    differs(QUERIES, "pub async fn page_of_owner", Changed, "returns `NoteRow`"),
    differs(QUERIES, "pub async fn update", Dropped, "one COALESCE cannot seal: `replace` instead"),
    differs(QUERIES, "pub async fn replace", Added, "compare-and-swap on the stored body"),
    differs(QUERIES, "pub async fn sealed_otherwise", Added, "rotate-data-key finds bodies under old keys"),
    differs(QUERIES, "pub async fn reseal_body", Added, "rotate-data-key rewrites one, if unchanged"),
    // The service seals and opens bodies with the data keys.
    differs(SERVICE, "docs", Changed, "says how bodies are sealed"),
    differs(SERVICE, "imports", Changed, "the encryption module and the service's own types"),
    differs(SERVICE, "const BODY", Added, "where sealed bodies live, bound into each ciphertext"),
    differs(SERVICE, "const UPDATE_ATTEMPTS", Added, "how often an update reads again"),
    differs(SERVICE, "pub struct Note", Added, "a note opened: the body in the clear"),
    differs(SERVICE, "pub struct NewNote", Added, "the row's is a stored form; this one is parsed"),
    differs(SERVICE, "pub struct NoteChanges", Added, "likewise, plus `confidential`"),
    differs(SERVICE, "pub enum NotesError", Changed, "plus `Contended` and `Encryption`"),
    differs(SERVICE, "pub async fn page", Changed, "opens each note"),
    differs(SERVICE, "pub async fn create", Changed, "seals the body of a confidential note"),
    differs(SERVICE, "pub async fn get", Changed, "opens the note"),
    differs(SERVICE, "pub async fn update", Changed, "reads, seals anew, compares and swaps"),
    differs(SERVICE, "pub async fn reseal_all", Added, "rotate-data-key"),
    differs(SERVICE, "fn stored_body", Added, "sealed when confidential"),
    differs(SERVICE, "fn open", Added, "opened when confidential"),
    differs(
        ERRORS,
        "impl From<crate::notes::NotesError> for ApiError",
        Changed,
        "409 and 500 for the two new errors",
    ),
    // The routes carry `confidential` and hand the service the data keys.
    differs(ROUTES, "pub struct NoteResponse", Changed, "plus `confidential`"),
    differs(ROUTES, "impl From<Note> for NoteResponse", Changed, "plus `confidential`"),
    differs(ROUTES, "pub struct NewNoteBody", Changed, "plus `confidential`"),
    differs(ROUTES, "pub struct NotePatch", Changed, "plus `confidential`"),
    differs(ROUTES, "pub async fn list", Changed, "passes the data keys"),
    differs(ROUTES, "pub async fn create", Changed, "passes the data keys and `confidential`"),
    differs(ROUTES, "pub async fn get", Changed, "passes the data keys"),
    differs(ROUTES, "pub async fn update", Changed, "passes the data keys and `confidential`"),
    // The example's tests go further than a scaffold's (its confidential
    // bodies are tested in `tests/api/encryption.rs`).
    differs(TESTS, "async fn create_titled", Added, "notes of chosen titles, for the page tests"),
    differs(TESTS, "async fn a_user_lists_only_their_own_notes_page_by_page", Added, "pagination"),
    differs(TESTS, "async fn page_sizes_are_bounded_and_unknown_parameters_refused", Added, "page bounds"),
    differs(
        TESTS,
        "async fn malformed_input_gets_the_right_4xx",
        Added,
        "413, 415, arrays, the longest valid note",
    ),
];

#[test]
fn the_notes_example_is_the_scaffolds_output_but_for_the_listed_differences() {
    let root = super::project_root().expect("the project");
    let backend = super::backend(&root).expect("the backend");
    let args: Vec<String> = COMMAND.split_whitespace().map(str::to_owned).collect();
    let (resource, _) = Resource::parse(&args).expect("the command parses");
    let files = [
        (MIGRATION, render::migration(&resource, backend)),
        ("src/domain/note.rs", rustfmt(&root, &render::domain(&resource))),
        (QUERIES, rustfmt(&root, &render::queries(&resource))),
        (SERVICE, rustfmt(&root, &render::service(&resource))),
        (ROUTES, rustfmt(&root, &render::routes(&resource))),
        (TESTS, rustfmt(&root, &render::tests(&resource, &[]))),
    ];
    let mut problems = String::new();
    for (file, scaffolded) in &files {
        let example = fs::read_to_string(root.join(file)).expect(file);
        compare(file, &items(&example), &items(scaffolded), &mut problems);
    }
    for listed in DIFFERENCES {
        if !files.iter().any(|(file, _)| *file == listed.file) && listed.file != ERRORS {
            let _ = writeln!(problems, "{}: not compared, yet listed ({})", listed.file, listed.why);
        }
    }
    let mapping = items(&rustfmt(&root, &render::error_mapping(&resource)));
    let errors = fs::read_to_string(root.join(ERRORS)).expect(ERRORS);
    let errors = items(&errors).into_iter().filter(|(key, _)| mapping.contains_key(key)).collect();
    compare(ERRORS, &errors, &mapping, &mut problems);
    edits(&root, &resource, &mut problems);
    assert!(
        problems.is_empty(),
        "the notes example and `cargo xtask scaffold {COMMAND}` differ:\n{problems}"
    );
}

/// What the scaffold would add to the project's shared files is there for
/// notes already: the modules, the router, the scopes and policy rows, the
/// roles' grants, the tag and the matrix rows (the error mapping is compared
/// as an item).
fn edits(root: &Path, resource: &Resource, problems: &mut String) {
    let checks: [(&str, Vec<String>); 8] = [
        ("src/lib.rs", vec![edit::module_line(resource)]),
        ("src/db/mod.rs", vec![edit::module_line(resource)]),
        ("src/http/routes/mod.rs", vec![edit::module_line(resource)]),
        ("src/domain/mod.rs", edit::domain_module_lines(resource)),
        ("src/http/mod.rs", vec![edit::router_line(resource)]),
        ("src/http/openapi.rs", vec![edit::tag_line(resource)]),
        ("src/authz.rs", edit::policy_lines(resource)),
        ("tests/api/authz.rs", vec![edit::matrix_line(resource)]),
    ];
    let authz = fs::read_to_string(root.join("src/authz.rs")).expect("authz.rs");
    if !edit::grants(&authz, resource) {
        let _ = writeln!(
            problems,
            "src/authz.rs: a role lacks the notes scopes side by side, as the scaffold grants them"
        );
    }
    for (file, snippets) in checks {
        let text = fs::read_to_string(root.join(file)).expect(file);
        for snippet in snippets {
            if !text.contains(snippet.trim_end()) {
                let _ = writeln!(problems, "{file}: lacks what the scaffold writes:\n{snippet}");
            }
        }
    }
}

fn compare(
    file: &str,
    example: &BTreeMap<String, String>,
    scaffolded: &BTreeMap<String, String>,
    problems: &mut String,
) {
    let listed = |item: &str| DIFFERENCES.iter().find(|listed| listed.file == file && listed.item == item);
    let keys = example.keys().chain(scaffolded.keys().filter(|key| !example.contains_key(*key)));
    for key in keys {
        let found = match (example.get(key), scaffolded.get(key)) {
            (Some(mine), Some(theirs)) if mine == theirs => None,
            (Some(_), Some(_)) => Some(Changed),
            (Some(_), None) => Some(Added),
            (None, _) => Some(Dropped),
        };
        match (found, listed(key)) {
            (None, None) => {}
            (None, Some(listed)) => {
                let _ = writeln!(
                    problems,
                    "{file}: `{key}` is listed ({:?}) but the same in both",
                    listed.change
                );
            }
            (Some(change), Some(listed)) if listed.change == change => {}
            (Some(change), _) => {
                let _ = writeln!(
                    problems,
                    "{file}: `{key}` {change:?}, not listed so.\n--- example:\n{}\n--- scaffold:\n{}",
                    example.get(key).map_or("(none)", String::as_str),
                    scaffolded.get(key).map_or("(none)", String::as_str),
                );
            }
        }
    }
    for listed in DIFFERENCES.iter().filter(|listed| listed.file == file) {
        if !example.contains_key(listed.item) && !scaffolded.contains_key(listed.item) {
            let _ = writeln!(problems, "{file}: `{}` is listed but in neither", listed.item);
        }
    }
}

/// A file's items by name. An item starts at a line at the margin after a
/// blank one (its docs and attributes included) and runs to the next.
fn items(text: &str) -> BTreeMap<String, String> {
    let mut chunks: Vec<Vec<&str>> = Vec::new();
    let mut previous_blank = true;
    for line in text.lines() {
        let at_margin = !line.is_empty() && !line.starts_with([' ', '}', ')', ']']);
        if at_margin && previous_blank || chunks.is_empty() {
            chunks.push(Vec::new());
        }
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(line);
        }
        previous_blank = line.trim().is_empty();
    }
    chunks.into_iter().map(|lines| (item_key(&lines), lines.join("\n").trim_end().to_owned())).collect()
}

/// `fn update`, `struct Note`, `impl From<Note> for NoteResponse`,
/// `imports`, `docs`, `CREATE TABLE notes`.
fn item_key(lines: &[&str]) -> String {
    let head = lines.iter().find(|line| {
        !(line.is_empty()
            || line.starts_with([' ', ')', ']', '}'])
            || line.starts_with("//")
            || line.starts_with("#[")
            || line.starts_with("--"))
    });
    let Some(head) = head else {
        return "docs".to_owned();
    };
    if head.starts_with("use ") || head.starts_with("pub use ") {
        return "imports".to_owned();
    }
    if head.starts_with("impl") {
        return head.trim_end_matches(" {").to_owned();
    }
    let end = head.find(['(', '<', ':', '=', '{', ';']).unwrap_or(head.len());
    head[..end].trim().to_owned()
}

/// `text` laid out by the project's rustfmt, as `cargo fmt` lays out a
/// scaffold's files.
fn rustfmt(root: &Path, text: &str) -> String {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(root.join("rustfmt.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("rustfmt (rustup component add rustfmt)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("to rustfmt");
    let output = child.wait_with_output().expect("rustfmt");
    assert!(output.status.success(), "rustfmt refused:\n{text}");
    String::from_utf8(output.stdout).expect("utf-8")
}
