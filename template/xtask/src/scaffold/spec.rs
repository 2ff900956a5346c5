//! What the command line asks for: the resource, its fields and their rules,
//! checked before anything is written.

/// A resource to scaffold.
pub struct Resource {
    /// Plural, snake_case: the table, the modules, the routes (`widgets`).
    pub plural: String,
    /// Singular, snake_case: the types and the audit target (`widget`).
    pub singular: String,
    /// Every caller its policy lets in reads every row; only the owner
    /// changes one.
    pub shared: bool,
    /// Only admins reach its routes (its scopes are granted to admins
    /// alone); among them it is shared.
    pub admin_only: bool,
    pub fields: Vec<Field>,
}

pub struct Field {
    pub name: String,
    pub kind: Kind,
}

pub enum Kind {
    /// One line, 1 to the given number of characters.
    Line(usize),
    /// Line breaks allowed, 0 to the given number of characters.
    Text(usize),
    Bool,
    Int(i64, i64),
    /// An exact decimal number in the range, with `scale` digits after the
    /// point; kept as a whole number of its smallest units (`min`, `max`
    /// too), so no float ever rounds it.
    Decimal {
        scale: u32,
        min: i64,
        max: i64,
    },
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An instant, RFC 3339 with its offset, kept in UTC.
    DateTime,
    Enum(Vec<String>),
    /// Optional: one of the caller's own rows of the given resource.
    Ref(String),
}

/// Names no resource or field may take: SQL keywords (a column or table so
/// named needs quoting everywhere) and Rust keywords (no module or field
/// can be so named).
const RESERVED: &[&str] = &[
    "all",
    "and",
    "any",
    "as",
    "asc",
    "async",
    "await",
    "between",
    "box",
    "break",
    "by",
    "case",
    "cast",
    "check",
    "column",
    "const",
    "constraint",
    "continue",
    "create",
    "crate",
    "cross",
    "current",
    "default",
    "delete",
    "desc",
    "distinct",
    "do",
    "drop",
    "dyn",
    "else",
    "end",
    "enum",
    "except",
    "exists",
    "extern",
    "false",
    "fetch",
    "fn",
    "for",
    "foreign",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "if",
    "impl",
    "in",
    "index",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "key",
    "left",
    "let",
    "like",
    "limit",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "natural",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "primary",
    "pub",
    "ref",
    "references",
    "return",
    "right",
    "select",
    "self",
    "session",
    "set",
    "static",
    "struct",
    "super",
    "table",
    "then",
    "to",
    "trait",
    "true",
    "type",
    "union",
    "unique",
    "unsafe",
    "update",
    "use",
    "user",
    "using",
    "values",
    "when",
    "where",
    "while",
    "with",
    "yield",
];

/// Columns every resource has already.
const OWN_COLUMNS: &[&str] = &["id", "owner_id", "created_at", "updated_at"];

/// Bounds that keep every request small (see the body limit).
const MAX_LINE_CHARS: usize = 1_000;
const MAX_TEXT_CHARS: usize = 100_000;

impl Resource {
    /// Parses `<name> <field>:<type>[:<rule>] …` and the options.
    pub fn parse(args: &[String]) -> Result<(Self, bool), String> {
        let (mut shared, mut admin_only, mut dry_run, mut singular) = (false, false, false, None);
        let mut positional = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--shared" => shared = true,
                "--admin-only" => admin_only = true,
                "--dry-run" => dry_run = true,
                "--singular" => singular = Some(args.next().ok_or("--singular needs a value")?.clone()),
                option if option.starts_with("--") => return Err(format!("unknown option {option}")),
                _ => positional.push(arg.as_str()),
            }
        }
        let (plural, fields) = positional.split_first().ok_or("name the resource, e.g. `widgets`")?;
        check_name(plural, "the resource")?;
        let singular = match singular {
            Some(singular) => singular,
            None => singular_of(plural)?,
        };
        check_name(&singular, "the singular")?;
        if singular == *plural {
            return Err(format!("the singular of {plural} must differ from it: give --singular"));
        }
        if fields.is_empty() {
            return Err("give at least one field, e.g. `title:string:200`".to_owned());
        }
        let fields = fields.iter().map(|field| Field::parse(field)).collect::<Result<Vec<_>, _>>()?;
        for (index, field) in fields.iter().enumerate() {
            if fields[..index].iter().any(|other| other.name == field.name) {
                return Err(format!("the field {} is given twice", field.name));
            }
        }
        if shared && admin_only {
            return Err(
                "--admin-only resources are shared among admins already: give one of the two".to_owned()
            );
        }
        let shared = shared || admin_only;
        Ok((Self { plural: (*plural).to_owned(), singular, shared, admin_only, fields }, dry_run))
    }

    /// `Widget`
    pub fn type_name(&self) -> String {
        pascal(&self.singular)
    }

    /// `Widgets`
    pub fn plural_type(&self) -> String {
        pascal(&self.plural)
    }

    /// `WIDGETS`
    pub fn constant(&self) -> String {
        self.plural.to_uppercase()
    }

    /// `widget` in prose (`work_item` → `work item`).
    pub fn prose(&self) -> String {
        self.singular.replace('_', " ")
    }

    /// `a widget`, `an item`, and capitalized (by the spelling: "an hour"
    /// is missed).
    pub fn with_article(&self) -> (String, String) {
        let prose = self.prose();
        let article = if prose.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        (format!("{article} {prose}"), format!("{}{} {prose}", article[..1].to_uppercase(), &article[1..]))
    }

    pub fn prose_plural(&self) -> String {
        self.plural.replace('_', " ")
    }

    pub fn references(&self) -> impl Iterator<Item = (&Field, &str)> {
        self.fields.iter().filter_map(|field| match &field.kind {
            Kind::Ref(target) => Some((field, target.as_str())),
            _ => None,
        })
    }
}

impl Field {
    fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        let kind = parts.next().ok_or_else(|| format!("{spec}: give a type, e.g. {name}:string:100"))?;
        let rule = parts.next();
        check_name(name, "a field")?;
        if OWN_COLUMNS.contains(&name) {
            return Err(format!("{name}: every resource has it already"));
        }
        let needs = |what: &str| format!("{spec}: {kind} needs {what}");
        let kind = match (kind, rule) {
            ("string", Some(max)) => Kind::Line(bounded(max, MAX_LINE_CHARS).ok_or_else(|| {
                needs(&format!("a maximum length from 1 to {MAX_LINE_CHARS}, e.g. {name}:string:200"))
            })?),
            ("text", Some(max)) => Kind::Text(bounded(max, MAX_TEXT_CHARS).ok_or_else(|| {
                needs(&format!("a maximum length from 1 to {MAX_TEXT_CHARS}, e.g. {name}:text:2000"))
            })?),
            ("bool", None) => Kind::Bool,
            ("date", None) => Kind::Date,
            ("datetime", None) => Kind::DateTime,
            ("decimal", Some(range)) => {
                let bounds =
                    range.split_once("..").and_then(|(min, max)| Some((decimal(min)?, decimal(max)?)));
                let (min, max, scale) = bounds
                    .filter(|((min, scale), (max, other))| scale == other && min <= max)
                    .map(|((min, scale), (max, _))| (min, max, scale))
                    .ok_or_else(|| {
                        needs(&format!(
                            "a range whose bounds have the same decimals (1 to {MAX_SCALE}), e.g. {name}:decimal:0.00..9999.99"
                        ))
                    })?;
                Kind::Decimal { scale, min, max }
            }
            ("int", Some(range)) => {
                let (min, max) = range
                    .split_once("..")
                    .and_then(|(min, max)| Some((min.parse::<i64>().ok()?, max.parse::<i64>().ok()?)))
                    .filter(|(min, max)| min <= max)
                    .ok_or_else(|| needs(&format!("a range, e.g. {name}:int:0..100")))?;
                Kind::Int(min, max)
            }
            ("enum", Some(values)) => {
                let values: Vec<String> = values.split('|').map(str::to_owned).collect();
                for value in &values {
                    check_identifier(value)
                        .map_err(|problem| format!("{spec}: the value {value:?} {problem}"))?;
                }
                if values.iter().enumerate().any(|(index, value)| values[..index].contains(value)) {
                    return Err(format!("{spec}: a value is given twice"));
                }
                Kind::Enum(values)
            }
            ("ref", Some(target)) => {
                check_name(target, "a referenced resource")?;
                Kind::Ref(target.to_owned())
            }
            ("string" | "text" | "int" | "decimal" | "enum" | "ref", None) => return Err(needs("a rule")),
            ("bool" | "date" | "datetime", Some(_)) => return Err(format!("{spec}: {kind} takes no rule")),
            _ => {
                return Err(format!(
                    "{spec}: unknown type {kind} (string, text, bool, int, decimal, date, datetime, enum, ref)"
                ));
            }
        };
        Ok(Self { name: name.to_owned(), kind })
    }

    /// `WidgetLabel`: the domain type of a field with a rule.
    pub fn type_name(&self, resource: &Resource) -> String {
        format!("{}{}", resource.type_name(), pascal(&self.name))
    }

    /// `LABEL`
    pub fn constant(&self) -> String {
        self.name.to_uppercase()
    }

    pub fn prose(&self) -> String {
        self.name.replace('_', " ")
    }
}

/// The most digits after the point, and in all: well inside an `i64` and
/// the 15 digits a client's float keeps exactly, should one read it so.
const MAX_SCALE: u32 = 6;
const MAX_DIGITS: usize = 15;

/// `-12.50` as (-1250, 2): the number in its smallest units, and its scale.
fn decimal(text: &str) -> Option<(i64, u32)> {
    let (sign, digits) = text.strip_prefix('-').map_or((1, text), |rest| (-1, rest));
    let (whole, fraction) = digits.split_once('.')?;
    let scale = u32::try_from(fraction.len()).ok().filter(|scale| (1..=MAX_SCALE).contains(scale))?;
    let all_digits = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) || whole.len() + fraction.len() > MAX_DIGITS {
        return None;
    }
    Some((sign * format!("{whole}{fraction}").parse::<i64>().ok()?, scale))
}

fn bounded(text: &str, most: usize) -> Option<usize> {
    text.parse::<usize>().ok().filter(|max| (1..=most).contains(max))
}

fn check_name(name: &str, what: &str) -> Result<(), String> {
    check_identifier(name).map_err(|problem| format!("{what} {name:?} {problem}"))?;
    if RESERVED.contains(&name) {
        return Err(format!("{what} {name:?} is a reserved word in SQL or Rust: choose another"));
    }
    if name.len() > 40 {
        return Err(format!("{what} {name:?} is longer than 40 characters"));
    }
    Ok(())
}

/// snake_case: lower-case letters, digits and single underscores, starting
/// with a letter.
fn check_identifier(name: &str) -> Result<(), &'static str> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_');
    if valid { Ok(()) } else { Err("must be snake_case: a-z, 0-9 and single underscores, from a letter") }
}

fn singular_of(plural: &str) -> Result<String, String> {
    let derived = if let Some(stem) = plural.strip_suffix("ies") {
        format!("{stem}y")
    } else if ["ses", "xes", "zes", "ches", "shes"].iter().any(|end| plural.ends_with(end)) {
        plural[..plural.len() - 2].to_owned()
    } else if let Some(stem) = plural.strip_suffix('s').filter(|stem| !stem.ends_with('s')) {
        stem.to_owned()
    } else {
        return Err(format!("give the singular of {plural} with --singular"));
    };
    Ok(derived)
}

pub fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Resource, String> {
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        Resource::parse(&args).map(|(resource, _)| resource)
    }

    #[test]
    fn names_and_fields_are_parsed_with_their_rules() {
        let resource =
            parse("work_items title:string:200 state:enum:open|in_progress size:int:1..5 --shared")
                .expect("valid");
        assert_eq!((resource.singular.as_str(), resource.type_name()), ("work_item", "WorkItem".to_owned()));
        assert!(resource.shared && !resource.admin_only);
        let kept = parse("rates label:string:20 --admin-only").expect("valid");
        assert!(kept.shared && kept.admin_only, "admins share what only they reach");
        assert!(matches!(resource.fields[2].kind, Kind::Int(1, 5)));
        let priced = parse("items price:decimal:-10.50..9999.99 due:date at:datetime").expect("valid");
        assert!(matches!(priced.fields[0].kind, Kind::Decimal { scale: 2, min: -1050, max: 999_999 }));
        assert!(matches!((&priced.fields[1].kind, &priced.fields[2].kind), (Kind::Date, Kind::DateTime)));
        assert_eq!(parse("categories name:string:50").expect("valid").singular, "category");
        assert_eq!(parse("taxes name:string:50").expect("valid").singular, "tax");
    }

    #[test]
    fn bad_names_types_and_rules_are_refused() {
        for bad in [
            "Widgets label:string:10",
            "order label:string:10",
            "widgets",
            "widgets id:string:10",
            "widgets label",
            "widgets label:string",
            "widgets label:string:0",
            "widgets label:string:x",
            "widgets size:int:5..1",
            "widgets state:enum:Open",
            "widgets label:float",
            "widgets price:decimal:0..10",
            "widgets price:decimal:0.0..10.00",
            "widgets price:decimal:10.00..0.00",
            "widgets price:decimal:0.0000000..1.0000000",
            "widgets price:decimal:1e3..2e3",
            "widgets due:date:2026",
            "widgets label:bool --shared --admin-only",
            "widgets select:bool",
            "widgets a:bool a:bool",
            "glass title:string:10",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
