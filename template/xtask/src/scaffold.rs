//! `cargo xtask scaffold`: a new resource, written the way `notes` is, so
//! that the easy path and the secure path are the same path:
//!
//! - a migration (an owner column, UUIDv7 ids, an index for the owner's
//!   pages, a CHECK for every rule the database can hold);
//! - domain types that validate while parsing, each bound written once;
//! - queries whose every write filters on the owner;
//! - a service with the object rules (another user's row answers exactly
//!   like a missing one) and audit events for each change;
//! - thin routes, their policy rows, scopes granted to the roles, the
//!   OpenAPI tag, the error mapping, and `openapi.json` regenerated;
//! - tests: CRUD, the input rules, the ownership matrix and a scope check.
//!
//! Every check runs before the first write: a refused or repeated scaffold
//! changes nothing.

mod edit;
#[cfg(test)]
mod example;
mod render;
mod spec;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use self::spec::Resource;

/// The database the project was generated for: its SQL differs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A file to create, or an existing one with its new content.
struct Change {
    path: PathBuf,
    content: String,
    created: bool,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let (resource, dry_run) = Resource::parse(args)?;
    let root = project_root()?;
    let backend = backend(&root)?;
    let changes = plan(&root, &resource, backend)?;
    for change in &changes {
        let verb = if change.created { "create" } else { "change" };
        println!("{verb} {}", change.path.strip_prefix(&root).unwrap_or(&change.path).display());
    }
    if dry_run {
        println!("(dry run: nothing written)");
        return Ok(());
    }
    for change in &changes {
        fs::write(&change.path, &change.content)
            .map_err(|err| format!("writing {}: {err}", change.path.display()))?;
    }
    cargo(&root, &["fmt", "--all"])?;
    let document = cargo_command()
        .args(["run", "--quiet", "--locked", "--", "openapi"])
        .current_dir(&root)
        .output()
        .map_err(|err| format!("running the service for its OpenAPI document: {err}"))?;
    if !document.status.success() {
        return Err(format!(
            "the project no longer builds; the scaffold's files are written, see:\n{}",
            String::from_utf8_lossy(&document.stderr)
        ));
    }
    fs::write(root.join("openapi.json"), &document.stdout)
        .map_err(|err| format!("writing openapi.json: {err}"))?;
    println!("change openapi.json");
    println!(
        "\n{} scaffolded. Next: `cargo test {}` and `cargo clippy --all-targets -- -D warnings`, then shape the \
         fields, rules and texts to the real need.",
        resource.plural, resource.plural
    );
    Ok(())
}

/// Every file written or changed, computed before any is: a refusal leaves
/// the project as it was.
fn plan(root: &Path, resource: &Resource, backend: Backend) -> Result<Vec<Change>, String> {
    let (plural, singular) = (&resource.plural, &resource.singular);
    let created = [
        format!("src/{plural}.rs"),
        format!("src/db/{plural}.rs"),
        format!("src/domain/{singular}.rs"),
        format!("src/http/routes/{plural}.rs"),
        format!("tests/api/{plural}.rs"),
    ];
    for path in &created {
        if root.join(path).exists() {
            return Err(format!("{path} exists already: {plural} is scaffolded, or the name is taken"));
        }
    }
    let lib = read(root, "src/lib.rs")?;
    if lib.lines().any(|line| line == format!("pub mod {plural};")) || root.join("src").join(plural).is_dir()
    {
        return Err(format!("a module named {plural} exists already"));
    }
    let authz = read(root, "src/authz.rs")?;
    if authz.contains(&format!("\"/api/v1/{plural}\"")) {
        return Err(format!("the route /api/v1/{plural} exists already"));
    }
    let needed = render::body_limit_kib(resource) * 1024;
    let allowed = server_body_limit(root)?;
    if needed > allowed {
        return Err(format!(
            "the longest valid {} takes up to {needed} bytes (every character escaped), more than the {allowed} \
             of server.body_limit_bytes in config/default.toml: lower the fields' maxima, or raise the limit",
            resource.prose()
        ));
    }
    let mut sampled = Vec::new();
    for (field, target) in resource.references() {
        let queries = read(root, &format!("src/db/{target}.rs"))
            .map_err(|_| format!("{}: there is no resource {target} to refer to", field.name))?;
        if !queries.contains("pub async fn find(") || !queries.contains("pub owner_id: Uuid") {
            return Err(format!(
                "{}: {target} has no owned rows to refer to (no `find` with an owner)",
                field.name
            ));
        }
        // A scaffolded target's tests offer a valid body to create one with.
        if read(root, &format!("tests/api/{target}.rs"))
            .is_ok_and(|tests| tests.contains("pub fn valid() -> Value"))
        {
            sampled.push(target);
        }
    }

    let migrations = root.join("migrations");
    let next = fs::read_dir(&migrations)
        .map_err(|err| format!("reading migrations/: {err}"))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.get(..4)?.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
        + 1;

    let mut changes = vec![
        new_file(root, format!("migrations/{next:04}_{plural}.sql"), render::migration(resource, backend)),
        new_file(root, format!("src/domain/{singular}.rs"), render::domain(resource)),
        new_file(root, format!("src/db/{plural}.rs"), render::queries(resource)),
        new_file(root, format!("src/{plural}.rs"), render::service(resource)),
        new_file(root, format!("src/http/routes/{plural}.rs"), render::routes(resource)),
        new_file(root, format!("tests/api/{plural}.rs"), render::tests(resource, &sampled)),
    ];
    for (path, change) in [
        ("src/lib.rs", edit::add_module as fn(&str, &Resource) -> Result<String, String>),
        ("src/db/mod.rs", edit::add_module),
        ("src/http/routes/mod.rs", edit::add_module),
        ("src/domain/mod.rs", edit::add_domain_module),
        ("src/http/mod.rs", edit::mount_router),
        ("src/http/error.rs", edit::map_errors),
        ("src/http/openapi.rs", edit::add_tag),
        ("src/authz.rs", edit::add_policies),
        ("tests/api/main.rs", edit::add_test_module),
        ("tests/api/authz.rs", edit::add_matrix_rows),
    ] {
        let content = change(&read(root, path)?, resource).map_err(|problem| format!("{path}: {problem}"))?;
        changes.push(Change { path: root.join(path), content, created: false });
    }
    Ok(changes)
}

/// The server's limit on any request body: a resource whose longest valid
/// body is larger could never be created whole.
fn server_body_limit(root: &Path) -> Result<usize, String> {
    read(root, "config/default.toml")?
        .lines()
        .find_map(|line| line.strip_prefix("body_limit_bytes = ")?.trim().parse().ok())
        .ok_or_else(|| "config/default.toml: no `body_limit_bytes = <bytes>` line".to_owned())
}

fn new_file(root: &Path, path: String, content: String) -> Change {
    Change { path: root.join(path), content, created: true }
}

fn read(root: &Path, path: &str) -> Result<String, String> {
    fs::read_to_string(root.join(path)).map_err(|err| format!("reading {path}: {err}"))
}

/// The project: the nearest directory, from here up, that holds this crate.
/// Found at run time: a binary built in a shared target directory may have
/// been compiled in another copy of the project.
fn project_root() -> Result<PathBuf, String> {
    let here = std::env::current_dir().map_err(|err| format!("the current directory: {err}"))?;
    here.ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("xtask/Cargo.toml").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not inside a project with xtask/", here.display()))
}

/// The cargo that runs this task (`cargo xtask` sets `CARGO`).
fn cargo_command() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Read from the sqlx features the project builds with.
fn backend(root: &Path) -> Result<Backend, String> {
    let manifest = read(root, "Cargo.toml")?;
    let sqlx = manifest
        .lines()
        .find(|line| line.starts_with("sqlx ="))
        .ok_or("Cargo.toml has no sqlx dependency")?;
    if sqlx.contains("\"postgres\"") {
        Ok(Backend::Postgres)
    } else if sqlx.contains("\"sqlite\"") {
        Ok(Backend::Sqlite)
    } else {
        Err("Cargo.toml: sqlx has neither the sqlite nor the postgres feature".to_owned())
    }
}

fn cargo(root: &Path, args: &[&str]) -> Result<(), String> {
    let status = cargo_command()
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|err| format!("cargo {}: {err}", args.join(" ")))?;
    if status.success() { Ok(()) } else { Err(format!("cargo {} failed", args.join(" "))) }
}
