//! The changes to files that exist: each finds its place by the code around
//! it and says what it looked for when a team has moved it, so that a
//! scaffold never writes half a resource.

use super::spec::Resource;

/// `pub mod <plural>;` after the last module declaration (`cargo fmt`
/// sorts them).
pub fn add_module(file: &str, resource: &Resource) -> Result<String, String> {
    insert_after_last(
        file,
        |line| line.starts_with("pub mod ") && line.ends_with(';'),
        &module_line(resource),
    )
    .ok_or_else(|| "no `pub mod …;` line to add the module after".to_owned())
}

pub fn module_line(resource: &Resource) -> String {
    format!("pub mod {};", resource.plural)
}

/// `mod <singular>;` and its `pub use`, after the last of each.
pub fn add_domain_module(file: &str, resource: &Resource) -> Result<String, String> {
    let mut lines = domain_module_lines(resource).into_iter();
    let module = lines.next().unwrap_or_default();
    let file = insert_after_last(file, |line| line.starts_with("mod ") && line.ends_with(';'), &module)
        .ok_or("no `mod …;` line to add the module after")?;
    match lines.next() {
        Some(export) => {
            insert_after_last(&file, |line| line.starts_with("pub use ") && line.ends_with(';'), &export)
                .ok_or_else(|| "no `pub use …;` line to add the types after".to_owned())
        }
        None => Ok(file),
    }
}

/// `mod <singular>;`, and `pub use <singular>::{…};` when it has types.
pub fn domain_module_lines(resource: &Resource) -> Vec<String> {
    let mut names: Vec<String> = resource
        .fields
        .iter()
        .filter(|field| super::render::has_domain_type(field))
        .map(|field| field.type_name(resource))
        .collect();
    // In the order `cargo fmt` keeps.
    names.sort();
    let mut lines = vec![format!("mod {};", resource.singular)];
    if !names.is_empty() {
        lines.push(format!("pub use {}::{{{}}};", resource.singular, names.join(", ")));
    }
    lines
}

/// `.merge(routes::<plural>::router())` in `api()`.
pub fn mount_router(file: &str, resource: &Resource) -> Result<String, String> {
    insert_after_last(
        file,
        |line| line.trim_start().starts_with(".merge(routes::") && line.ends_with("::router())"),
        &router_line(resource),
    )
    .ok_or_else(|| "no `.merge(routes::…::router())` line in `api()`".to_owned())
}

pub fn router_line(resource: &Resource) -> String {
    format!("        .merge(routes::{}::router())", resource.plural)
}

/// The service error's mapping, beside the others (before the tests).
#[expect(clippy::unnecessary_wraps, reason = "every edit has the signature of those that can fail")]
pub fn map_errors(file: &str, resource: &Resource) -> Result<String, String> {
    let mapping = super::render::error_mapping(resource);
    Ok(match file.find("\n#[cfg(test)]") {
        Some(at) => format!("{}\n{mapping}{}", &file[..at], &file[at..]),
        None => format!("{file}\n{mapping}"),
    })
}

/// The resource's tag in the document's `tags(…)`.
pub fn add_tag(file: &str, resource: &Resource) -> Result<String, String> {
    insert_after_last(
        file,
        |line| line.trim_start().starts_with("(name = \"") && line.ends_with("\"),"),
        &tag_line(resource),
    )
    .ok_or_else(|| "no `(name = \"…\", description = \"…\"),` tag to add one after".to_owned())
}

pub fn tag_line(resource: &Resource) -> String {
    format!(
        "        (name = \"{}\", description = \"{}\"),",
        resource.plural,
        super::render::capitalized(&format!("{} {}", resource.prose_plural(), owner_phrase(resource)))
    )
}

fn owner_phrase(resource: &Resource) -> &'static str {
    if resource.admin_only {
        "kept by admins: read by every admin, changed by their owner"
    } else if resource.shared {
        "read by every user, changed by their owner"
    } else {
        "owned by users"
    }
}

/// The scopes, the roles that grant them, and a policy row per route.
pub fn add_policies(file: &str, resource: &Resource) -> Result<String, String> {
    let file = insert_after_last(
        file,
        |line| line.starts_with("pub const ") && line.ends_with("\";") && line.contains(": &str = \""),
        &scope_lines(resource),
    )
    .ok_or("no scope constant (`pub const …: &str = \"…\";`) to add the new ones after")?;
    // After `cargo fmt` a long list spans lines: the list runs to its `]`.
    let mut file = file;
    let roles = if resource.admin_only { &ROLES[1..] } else { &ROLES[..] };
    for role in roles {
        let (from, to) = role_list(&file, role)
            .ok_or("`Role::scopes` has no `Self::User => &[…],` and `Self::Admin => &[…],` lists")?;
        let separator = if file[from..to].trim_end().ends_with(',') { " " } else { ", " };
        let end = from + file[from..to].trim_end().len();
        file = format!("{}{separator}{}{}", &file[..end], grant(resource), &file[end..]);
    }
    let at = file.find("pub const ROUTES: &[RoutePolicy] = &[").ok_or("no `pub const ROUTES` table")?;
    let end = at + file[at..].find("\n];").ok_or("the `ROUTES` table has no end (`];`)")?;
    Ok(format!("{}\n{}{}", &file[..end], policy_rows(resource), &file[end..]))
}

/// What `add_policies` writes, each piece as it reads in `authz.rs`: the
/// scopes and the policy rows.
#[cfg(test)]
pub fn policy_lines(resource: &Resource) -> Vec<String> {
    vec![scope_lines(resource), policy_rows(resource)]
}

/// Whether each role grants the scopes as `add_policies` adds them: side by
/// side in its list (resources scaffolded later follow them).
#[cfg(test)]
pub fn grants(authz: &str, resource: &Resource) -> bool {
    let constant = resource.constant();
    let (read, write) = (format!("{constant}_READ"), format!("{constant}_WRITE"));
    let roles = if resource.admin_only { &ROLES[1..] } else { &ROLES[..] };
    roles.iter().all(|role| {
        role_list(authz, role).is_some_and(|(from, to)| {
            let scopes: Vec<&str> = authz[from..to].split(',').map(str::trim).collect();
            scopes.windows(2).any(|pair| pair[0] == read && pair[1] == write)
        })
    })
}

/// The roles whose scope lists a resource's scopes join; an admin-only
/// resource's join the last alone.
const ROLES: [&str; 2] = ["Self::User => &[", "Self::Admin => &["];

/// Where the scope list of `role` is in `file`: from after its `[` to its `]`.
fn role_list(file: &str, role: &str) -> Option<(usize, usize)> {
    let from = file.find(role)? + role.len();
    Some((from, from + file[from..].find(']')?))
}

fn scope_lines(resource: &Resource) -> String {
    let (constant, plural) = (resource.constant(), &resource.plural);
    format!(
        "pub const {constant}_READ: &str = \"{plural}:read\";\npub const {constant}_WRITE: &str = \"{plural}:write\";"
    )
}

/// The scopes each role is granted, added at the end of its list.
fn grant(resource: &Resource) -> String {
    let constant = resource.constant();
    format!("{constant}_READ, {constant}_WRITE")
}

fn policy_rows(resource: &Resource) -> String {
    let (constant, plural) = (resource.constant(), &resource.plural);
    [
        ("GET", format!("/api/v1/{plural}"), "READ"),
        ("POST", format!("/api/v1/{plural}"), "WRITE"),
        ("GET", format!("/api/v1/{plural}/{{id}}"), "READ"),
        ("PATCH", format!("/api/v1/{plural}/{{id}}"), "WRITE"),
        ("DELETE", format!("/api/v1/{plural}/{{id}}"), "WRITE"),
    ]
    .map(|(method, path, scope)| {
        format!("    route(\"{method}\", \"{path}\", Scope({constant}_{scope}), Class::Authenticated),")
    })
    .join("\n")
}

/// The resource's rows in the authorization matrix of `tests/api/authz.rs`.
pub fn add_matrix_rows(file: &str, resource: &Resource) -> Result<String, String> {
    let file = file.replacen("    let rows = vec![", "    let mut rows = vec![", 1);
    insert_after_last(
        &file,
        |line| {
            line == "    // The rows of each scaffolded resource follow."
                || line.starts_with("    rows.extend(crate::")
        },
        &matrix_line(resource),
    )
    .ok_or_else(|| "no `// The rows of each scaffolded resource follow.` line in `matrix()`".to_owned())
}

pub fn matrix_line(resource: &Resource) -> String {
    format!("    rows.extend(crate::{}::matrix_rows());", resource.plural)
}

/// `mod <plural>;` among the test modules.
pub fn add_test_module(file: &str, resource: &Resource) -> Result<String, String> {
    insert_after_last(
        file,
        |line| line.starts_with("mod ") && line.ends_with(';'),
        &format!("mod {};", resource.plural),
    )
    .ok_or_else(|| "no `mod …;` line to add the tests after".to_owned())
}

/// `file` with `new` on a line of its own after the last line that `place`
/// accepts.
fn insert_after_last(file: &str, place: impl Fn(&str) -> bool, new: &str) -> Option<String> {
    let lines: Vec<&str> = file.lines().collect();
    let at = lines.iter().rposition(|line| place(line))?;
    let mut out: Vec<&str> = lines[..=at].to_vec();
    out.push(new);
    out.extend_from_slice(&lines[at + 1..]);
    Some(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(args: &str) -> Resource {
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        Resource::parse(&args).expect("valid").0
    }

    /// Once lists grow, `cargo fmt` wraps them: a third resource still joins
    /// each role, whether its list is on one line or many.
    #[test]
    fn scopes_join_each_role_however_its_list_is_laid_out() {
        let authz = "pub const A_READ: &str = \"a:read\";\n\
            fn scopes() {\n    match self {\n        Self::User => &[A_READ],\n        Self::Admin => &[\n            \
            USERS_ADMIN,\n            A_READ,\n        ],\n    }\n}\n\
            pub const ROUTES: &[RoutePolicy] = &[\n    route(\"GET\", \"/a\", Public, Class::Anonymous),\n];\n";
        let widgets = resource("widgets label:string:10");
        let changed = add_policies(authz, &widgets).expect("added");
        assert!(grants(&changed, &widgets), "{changed}");
        assert!(changed.contains("Self::User => &[A_READ, WIDGETS_READ, WIDGETS_WRITE],"), "{changed}");
        assert!(changed.contains("A_READ, WIDGETS_READ, WIDGETS_WRITE\n        ],"), "{changed}");
        assert!(!grants(authz, &widgets));
        let rates = resource("rates label:string:10 --admin-only");
        let kept = add_policies(authz, &rates).expect("added");
        assert!(kept.contains("Self::User => &[A_READ],") && grants(&kept, &rates), "{kept}");
    }
}
