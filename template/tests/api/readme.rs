//! The README's table of where each security control lives, and
//! SECURITY.md's map of the OWASP API Security Top 10 and of each topic of
//! secure API practice, name for every row the files and the tests that
//! prove it. This keeps those names true: a renamed or deleted test fails
//! here, not in a reader's trust. (README rows may also name checks of the
//! template's smoke run, `smoke: …`; the template verifies those.)

use std::path::{Path, PathBuf};

const README: &str = include_str!("../../README.md");
const TABLE: &str = "## Where each security control lives";
const SECURITY: &str = include_str!("../../SECURITY.md");
const OWASP: &str = "## OWASP API Security Top 10 (2023)";
const PRACTICE: &str = "## Secure API practice, topic by topic";

/// Each row's control, source files and proofs, in the table under
/// `heading` of `document`.
fn rows(document: &str, heading: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let table = document.split(heading).nth(1).unwrap_or_else(|| panic!("no table under {heading}"));
    let table = table.split("\n## ").next().unwrap_or_default();
    let code = |cell: &str| cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>();
    table
        .lines()
        .skip_while(|line| !line.starts_with("| ---"))
        .skip(1)
        .filter(|line| line.starts_with("| "))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 3, "a row of three cells: {line}");
            (cells[0].to_owned(), code(cells[1]), code(cells[2]))
        })
        .collect()
}

/// The file and function a proof names: `tests/api/x.rs::name`, or a unit
/// test as `module::path::tests::name`.
fn locate(root: &Path, proof: &str) -> (PathBuf, String) {
    if let Some((file, name)) = proof.split_once(".rs::") {
        return (root.join(format!("{file}.rs")), name.to_owned());
    }
    let (module, name) = proof.split_once("::tests::").unwrap_or_else(|| panic!("{proof}: not a test path"));
    let base = root.join("src").join(module.replace("::", "/"));
    let file = base.with_extension("rs");
    (if file.exists() { file } else { base.join("mod.rs") }, name.to_owned())
}

/// The "Adding a resource" recipe follows the notes resource file by file:
/// every file it names exists.
#[test]
fn every_file_the_recipe_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let recipe = README.split("## Adding a resource").nth(1).expect("the README has the recipe");
    let recipe = recipe.split("\n## ").next().unwrap_or_default();
    let files: Vec<&str> = recipe
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|code| {
            Path::new(code).extension().is_some_and(|extension| extension == "rs" || extension == "sql")
        })
        .collect();
    assert!(files.len() >= 8, "the recipe names too few files: {files:?}");
    for file in files {
        assert!(root.join(file).exists(), "the recipe names {file}, which does not exist");
    }
}

#[test]
fn every_test_the_control_table_names_exists_and_is_a_test() {
    let rows = rows(README, TABLE);
    assert!(rows.len() >= 20, "the table lost rows: {}", rows.len());
    assert_proven(&rows);
}

#[test]
fn the_owasp_map_covers_every_risk_with_real_files_and_tests() {
    let owasp = rows(SECURITY, OWASP);
    let risks: Vec<&str> =
        owasp.iter().map(|(risk, _, _)| risk.split(' ').next().unwrap_or_default()).collect();
    let expected: Vec<String> = (1..=10).map(|n| format!("API{n}")).collect();
    assert_eq!(risks, expected, "one row per risk, in order");
    assert_proven(&owasp);
    let practice = rows(SECURITY, PRACTICE);
    assert!(practice.len() >= 8, "the practice table lost rows: {}", practice.len());
    assert_proven(&practice);
}

/// Every source a row names exists, and every proof is a test.
fn assert_proven(rows: &[(String, Vec<String>, Vec<String>)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (control, sources, proofs) in rows {
        for source in sources.iter().filter(|source| source.contains('/') || source.contains('.')) {
            assert!(root.join(source).exists(), "{control}: {source} does not exist");
        }
        let tests: Vec<&String> = proofs.iter().filter(|proof| !proof.starts_with("smoke: ")).collect();
        assert!(!tests.is_empty(), "{control}: no test of this project proves it");
        for proof in tests {
            let (file, name) = locate(root, proof);
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|err| panic!("{control}: {proof}: cannot read {}: {err}", file.display()));
            let at = text
                .find(&format!("fn {name}("))
                .unwrap_or_else(|| panic!("{control}: {proof} does not exist"));
            let before = &text[text[..at].rfind("\n\n").unwrap_or(0)..at];
            assert!(
                ["#[test]", "#[sqlx::test", "#[tokio::test"]
                    .iter()
                    .any(|attribute| before.contains(attribute)),
                "{control}: {proof} is not a test"
            );
        }
    }
}
