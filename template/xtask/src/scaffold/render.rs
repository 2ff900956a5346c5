//! The new files' contents, written the way `notes` is. `cargo fmt` lays
//! them out afterwards, so the text here need not.

use std::fmt::Write as _;

use super::{
    Backend,
    spec::{Field, Kind, Resource, pascal},
};

/// Whether a field has a type of its own in `domain` (a rule to check).
pub fn has_domain_type(field: &Field) -> bool {
    !matches!(field.kind, Kind::Bool | Kind::Ref(_))
}

pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

pub fn migration(resource: &Resource, backend: Backend) -> String {
    let (plural, sqlite) = (&resource.plural, backend == Backend::Sqlite);
    let (uuid, time, int, boolean, date) = if sqlite {
        ("BLOB", "TEXT", "INTEGER", "INTEGER", "TEXT")
    } else {
        ("UUID", "TIMESTAMPTZ", "BIGINT", "BOOLEAN", "DATE")
    };
    let mut columns = vec![
        ("id".to_owned(), uuid, if sqlite { "PRIMARY KEY NOT NULL" } else { "PRIMARY KEY" }.to_owned()),
        ("owner_id".to_owned(), uuid, "NOT NULL REFERENCES users (id) ON DELETE CASCADE".to_owned()),
    ];
    for field in &resource.fields {
        let name = &field.name;
        columns.push(match &field.kind {
            Kind::Line(max) | Kind::Text(max) => {
                (name.clone(), "TEXT", format!("NOT NULL CHECK (length({name}) <= {max})"))
            }
            Kind::Bool if sqlite => (name.clone(), boolean, format!("NOT NULL CHECK ({name} IN (0, 1))")),
            Kind::Bool => (name.clone(), boolean, "NOT NULL".to_owned()),
            // A decimal is held in its smallest units, so the bounds are too.
            Kind::Int(min, max) | Kind::Decimal { min, max, .. } => {
                (name.clone(), int, format!("NOT NULL CHECK ({name} BETWEEN {min} AND {max})"))
            }
            Kind::Date => (name.clone(), date, "NOT NULL".to_owned()),
            Kind::DateTime => (name.clone(), time, "NOT NULL".to_owned()),
            Kind::Enum(values) => {
                let values = values.iter().map(|value| format!("'{value}'")).collect::<Vec<_>>().join(", ");
                (name.clone(), "TEXT", format!("NOT NULL CHECK ({name} IN ({values}))"))
            }
            Kind::Ref(target) => (name.clone(), uuid, format!("REFERENCES {target} (id) ON DELETE SET NULL")),
        });
    }
    columns.push(("created_at".to_owned(), time, "NOT NULL".to_owned()));
    columns.push(("updated_at".to_owned(), time, "NOT NULL".to_owned()));
    // Names and types in columns, as the project's own migrations lay them out.
    let name_width = columns.iter().map(|(name, ..)| name.len()).max().unwrap_or(0).max(11);
    let type_width = columns.iter().map(|(_, kind, _)| kind.len()).max().unwrap_or(0);
    let body = columns
        .iter()
        .map(|(name, kind, rest)| format!("    {name:name_width$} {kind:type_width$} {rest}"))
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        "-- {}: each belongs to one user (scaffolded by `cargo xtask scaffold`).\n\nCREATE TABLE {plural} (\n    -- UUIDv7: ordered by creation, so pages can follow the primary key.\n{body}\n){};\n\nCREATE INDEX {plural}_by_owner ON {plural} (owner_id, id);\n",
        capitalized(&resource.prose_plural()),
        if sqlite { " STRICT" } else { "" }
    )
}

/// `text` as comment lines that start with `marker` (`//!`, `///`),
/// wrapped before the 80th column as the project's own comments are.
pub fn comment(marker: &str, text: &str) -> String {
    let mut out = String::new();
    let mut line = marker.to_owned();
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 76 && line.len() > marker.len() {
            out.push_str(&line);
            out.push('\n');
            line.clear();
            line.push_str(marker);
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

pub fn domain(resource: &Resource) -> String {
    let typed: Vec<&Field> = resource.fields.iter().filter(|field| has_domain_type(field)).collect();
    let mut out = String::new();
    let has = |kind: fn(&Kind) -> bool| typed.iter().any(|field| kind(&field.kind));
    let has_strings = has(|kind| !matches!(kind, Kind::Enum(_)));
    let built =
        has(|kind| matches!(kind, Kind::Int(..) | Kind::Decimal { .. } | Kind::Date | Kind::DateTime));
    let formatted = has(|kind| matches!(kind, Kind::Int(..) | Kind::Date | Kind::DateTime));
    let has_decimals = has(|kind| matches!(kind, Kind::Decimal { .. }));
    let _ = writeln!(
        out,
        "//! The fields of {} with a rule, each checked while parsing.\n",
        resource.prose_plural()
    );
    out.push_str("use serde::{Deserialize, Serialize};\n");
    if has_strings {
        out.push_str("use utoipa::{PartialSchema, ToSchema, openapi::RefOr, openapi::Schema};\n");
    } else {
        out.push_str("use utoipa::ToSchema;\n");
    }
    if formatted {
        out.push_str("use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};\n");
    } else if built {
        out.push_str("use utoipa::openapi::schema::{ObjectBuilder, Type};\n");
    }
    let mut time = Vec::new();
    if has(|kind| matches!(kind, Kind::Date)) {
        time.extend(["Date", "Month"]);
    }
    if has(|kind| matches!(kind, Kind::DateTime)) {
        time.extend(["OffsetDateTime", "UtcOffset", "format_description::well_known::Rfc3339"]);
    }
    if !time.is_empty() {
        let _ = writeln!(out, "use time::{{{}}};", time.join(", "));
    }
    let mut tests = String::new();
    for field in typed {
        let name = field.type_name(resource);
        let constant = field.constant();
        let what = format!("{}'s {}", resource.with_article().1, field.prose());
        match &field.kind {
            Kind::Line(max) => {
                let _ = write!(
                    out,
                    r#"
{docs}#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct {name}(String);

const {constant}_MAX_CHARS: usize = {max_literal};

impl TryFrom<String> for {name} {{
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {{
        super::single_line(&value, {constant}_MAX_CHARS).map(Self)
    }}
}}

impl PartialSchema for {name} {{
    fn schema() -> RefOr<Schema> {{
        super::string_schema("{what}, on one line.", 1, {constant}_MAX_CHARS, None, None)
    }}
}}

"#,
                    max_literal = literal(*max),
                    docs = comment(
                        "///",
                        &format!("{what}: 1 to `{constant}_MAX_CHARS` characters once trimmed, on one line.")
                    ),
                );
                out.push_str(&string_accessors(&name));
                let _ = write!(
                    tests,
                    r#"
    #[test]
    fn {field}_is_one_bounded_line() {{
        assert_eq!({name}::try_from(" x ".to_owned()).expect("valid").as_str(), "x");
        for bad in [String::new(), " ".to_owned(), "a\nb".to_owned(), "x".repeat({constant}_MAX_CHARS + 1)] {{
            assert!({name}::try_from(bad.clone()).is_err(), "{{bad:?}}");
        }}
    }}
"#,
                    field = field.name
                );
            }
            Kind::Text(max) => {
                let _ = write!(
                    out,
                    r#"
/// {what}: up to `{constant}_MAX_CHARS` characters; line breaks and tabs
/// allowed, other control characters not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct {name}(String);

const {constant}_MAX_CHARS: usize = {max_literal};

impl TryFrom<String> for {name} {{
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {{
        if value.chars().count() > {constant}_MAX_CHARS {{
            return Err(super::too_long({constant}_MAX_CHARS));
        }}
        if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {{
            return Err("must not contain control characters other than line breaks and tabs".to_owned());
        }}
        Ok(Self(value))
    }}
}}

impl PartialSchema for {name} {{
    fn schema() -> RefOr<Schema> {{
        let description = "{what}; line breaks and tabs allowed, other control characters not.";
        super::string_schema(description, 0, {constant}_MAX_CHARS, None, None)
    }}
}}

"#,
                    max_literal = literal(*max),
                );
                out.push_str(&string_accessors(&name));
                let _ = write!(
                    tests,
                    r#"
    #[test]
    fn {field}_keeps_line_breaks_and_is_bounded() {{
        assert!({name}::try_from("one\ntwo\tthree\r\n".to_owned()).is_ok());
        assert!({name}::try_from(String::new()).is_ok());
        assert!({name}::try_from("bell\u{{7}}".to_owned()).is_err());
        assert!({name}::try_from("x".repeat({constant}_MAX_CHARS + 1)).is_err());
    }}
"#,
                    field = field.name
                );
            }
            Kind::Int(min, max) => {
                let _ = write!(
                    out,
                    r#"
/// {what}: a whole number from `{constant}_MIN` to `{constant}_MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct {name}(i64);

const {constant}_MIN: i64 = {min_literal};
const {constant}_MAX: i64 = {max_literal};

impl {name} {{
    #[must_use]
    pub fn get(self) -> i64 {{
        self.0
    }}
}}

impl TryFrom<i64> for {name} {{
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {{
        if ({constant}_MIN..={constant}_MAX).contains(&value) {{
            Ok(Self(value))
        }} else {{
            Err(format!("must be from {{{constant}_MIN}} to {{{constant}_MAX}}"))
        }}
    }}
}}

impl PartialSchema for {name} {{
    fn schema() -> RefOr<Schema> {{
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .description(Some("{what}."))
            .minimum(Some({constant}_MIN))
            .maximum(Some({constant}_MAX))
            .into()
    }}
}}

impl ToSchema for {name} {{}}

impl From<{name}> for i64 {{
    fn from(value: {name}) -> Self {{
        value.0
    }}
}}
"#,
                    min_literal = literal(*min),
                    max_literal = literal(*max),
                );
                let _ = write!(
                    tests,
                    r"
    #[test]
    fn {field}_is_within_its_range() {{
        assert!({name}::try_from({constant}_MIN).is_ok() && {name}::try_from({constant}_MAX).is_ok());
        assert!({name}::try_from({constant}_MIN.saturating_sub(1)).is_err() || {constant}_MIN == i64::MIN);
        assert!({name}::try_from({constant}_MAX.saturating_add(1)).is_err() || {constant}_MAX == i64::MAX);
    }}
",
                    field = field.name
                );
            }
            Kind::Enum(values) => {
                let variants: Vec<String> = values.iter().map(|value| pascal(value)).collect();
                let list = values.join(", ");
                let _ = write!(
                    out,
                    r#"
/// {what}: one of {list}.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum {name} {{
{variants}
}}

impl {name} {{
    #[must_use]
    pub fn as_str(self) -> &'static str {{
        match self {{
{as_str}
        }}
    }}
}}

/// Unknown values are refused without being echoed.
impl TryFrom<String> for {name} {{
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {{
        match value.as_str() {{
{parse}
            _ => Err("must be one of: {list}".to_owned()),
        }}
    }}
}}
"#,
                    variants = variants
                        .iter()
                        .map(|variant| format!("    {variant},"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    as_str = values
                        .iter()
                        .zip(&variants)
                        .map(|(value, variant)| format!("            Self::{variant} => \"{value}\","))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    parse = values
                        .iter()
                        .zip(&variants)
                        .map(|(value, variant)| format!("            \"{value}\" => Ok(Self::{variant}),"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                let _ = write!(
                    tests,
                    r#"
    #[test]
    fn {field}_is_one_of_its_values() {{
        for value in [{quoted}] {{
            assert_eq!({name}::try_from(value.to_owned()).expect("known").as_str(), value);
        }}
        assert!({name}::try_from("unknown value".to_owned()).is_err());
    }}
"#,
                    field = field.name,
                    quoted = values.iter().map(|value| format!("\"{value}\"")).collect::<Vec<_>>().join(", ")
                );
            }
            Kind::Decimal { scale, min, max } => {
                let (code, test) = decimal_type(&name, &constant, &what, &field.name, (*scale, *min, *max));
                out.push_str(&code);
                tests.push_str(&test);
            }
            Kind::Date => {
                let (code, test) = date_type(&name, &what, &field.name);
                out.push_str(&code);
                tests.push_str(&test);
            }
            Kind::DateTime => {
                let (code, test) = datetime_type(&name, &what, &field.name);
                out.push_str(&code);
                tests.push_str(&test);
            }
            Kind::Bool | Kind::Ref(_) => {}
        }
    }
    if has_decimals {
        out.push_str(DECIMAL_TEXT);
    }
    let _ = write!(out, "\n#[cfg(test)]\nmod tests {{\n    use super::*;\n{tests}}}\n");
    out
}

/// `units` (in steps of 10^-`scale`) as a decimal: `1250` at scale 2 is `12.50`.
fn decimal_literal(units: i64, scale: u32) -> String {
    let step = 10_i64.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let (whole, fraction) =
        (units.unsigned_abs() / step.unsigned_abs(), units.unsigned_abs() % step.unsigned_abs());
    format!("{sign}{whole}.{fraction:0width$}", width = scale as usize)
}

/// The two conversions every decimal type of a file shares.
const DECIMAL_TEXT: &str = r#"
/// `text` in units of 10^-`scale` when it is a decimal in plain notation
/// with at most `scale` digits after the point (`12.5`, `-0.25`, `7`):
/// never a float, an exponent or a sign `+`, so nothing is rounded.
fn decimal_units(text: &str, scale: u32) -> Option<i64> {
    let (negative, digits) = text.strip_prefix('-').map_or((false, text), |rest| (true, rest));
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let digits_only = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || fraction.len() > scale as usize {
        return None;
    }
    let padded = format!("{whole}{fraction:0<width$}", width = scale as usize);
    let units = padded.parse::<i64>().ok()?;
    Some(if negative { -units } else { units })
}

/// `units` in steps of 10^-`scale`, written with all `scale` decimals.
fn decimal_text(units: i64, scale: u32) -> String {
    let step = 10_u64.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let (whole, fraction) = (units.unsigned_abs() / step, units.unsigned_abs() % step);
    format!("{sign}{whole}.{fraction:0width$}", width = scale as usize)
}
"#;

fn decimal_type(
    name: &str,
    constant: &str,
    what: &str,
    field: &str,
    rule: (u32, i64, i64),
) -> (String, String) {
    let (scale, min, max) = rule;
    let (low, high) = (decimal_literal(min, scale), decimal_literal(max, scale));
    let digits = "[0-9]";
    let code = format!(
        r#"
{docs}#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct {name}(i64);

/// Digits after the point; the value is kept in units of 10^-SCALE.
const {constant}_SCALE: u32 = {scale};
const {constant}_MIN: i64 = {min_literal};
const {constant}_MAX: i64 = {max_literal};

impl {name} {{
    /// The value in units of 10^-`{constant}_SCALE`: what the database holds.
    #[must_use]
    pub fn units(self) -> i64 {{
        self.0
    }}
}}

impl TryFrom<String> for {name} {{
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {{
        let units = decimal_units(&value, {constant}_SCALE).ok_or_else(|| {{
            format!("must be a decimal number in a string, with at most {{{constant}_SCALE}} digits after the point")
        }})?;
        Self::try_from(units)
    }}
}}

/// From units, as the database gives them back.
impl TryFrom<i64> for {name} {{
    type Error = String;

    fn try_from(units: i64) -> Result<Self, Self::Error> {{
        if ({constant}_MIN..={constant}_MAX).contains(&units) {{
            Ok(Self(units))
        }} else {{
            Err("must be from {low} to {high}".to_owned())
        }}
    }}
}}

impl PartialSchema for {name} {{
    fn schema() -> RefOr<Schema> {{
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("{what}: a decimal number from {low} to {high}, in a string so that no float rounds it."))
            .pattern(Some(r"^-?{digits}+(\.{digits}{{1,{scale}}})?$"))
            .examples(["{low}"])
            .into()
    }}
}}

impl ToSchema for {name} {{}}

impl From<{name}> for String {{
    fn from(value: {name}) -> Self {{
        decimal_text(value.0, {constant}_SCALE)
    }}
}}
"#,
        docs = comment(
            "///",
            &format!(
                "{what}: an exact decimal from {low} to {high}, at most {scale} digits after the point."
            )
        ),
        min_literal = literal(min),
        max_literal = literal(max),
    );
    let test = format!(
        r#"
    #[test]
    fn {field}_is_an_exact_decimal_in_its_range() {{
        for bound in [{constant}_MIN, {constant}_MAX] {{
            let value = {name}::try_from(bound).expect("in range");
            assert_eq!({name}::try_from(String::from(value)), Ok(value), "written and read back");
        }}
        assert!({name}::try_from({constant}_MAX.saturating_add(1)).is_err() || {constant}_MAX == i64::MAX);
        assert!({name}::try_from({constant}_MIN.saturating_sub(1)).is_err() || {constant}_MIN == i64::MIN);
        let too_precise = format!("0.{{}}1", "0".repeat({constant}_SCALE as usize));
        for bad in ["", "-", ".5", "1e3", "+1", " 1", "1,5", "0x10", "--1", too_precise.as_str()] {{
            assert!({name}::try_from(bad.to_owned()).is_err(), "{{bad:?}}");
        }}
    }}
"#
    );
    (code, test)
}

fn date_type(name: &str, what: &str, field: &str) -> (String, String) {
    let code = format!(
        r#"
/// {what}: a calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct {name}(Date);

impl {name} {{
    #[must_use]
    pub fn get(self) -> Date {{
        self.0
    }}
}}

/// As the database gives it back.
impl From<Date> for {name} {{
    fn from(date: Date) -> Self {{
        Self(date)
    }}
}}

/// Only `YYYY-MM-DD`, and only a date that exists.
impl TryFrom<String> for {name} {{
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {{
        let invalid = || "must be a date that exists, written YYYY-MM-DD".to_owned();
        let bytes = value.as_bytes();
        let shaped = bytes.len() == 10
            && bytes.iter().enumerate().all(|(at, byte)| if at == 4 || at == 7 {{ *byte == b'-' }} else {{ byte.is_ascii_digit() }});
        if !shaped {{
            return Err(invalid());
        }}
        let number = |range: std::ops::Range<usize>| value[range].parse::<u16>().map_err(|_| invalid());
        let month = Month::try_from(u8::try_from(number(5..7)?).map_err(|_| invalid())?).map_err(|_| invalid())?;
        let day = u8::try_from(number(8..10)?).map_err(|_| invalid())?;
        Date::from_calendar_date(i32::from(number(0..4)?), month, day).map(Self).map_err(|_| invalid())
    }}
}}

impl PartialSchema for {name} {{
    fn schema() -> RefOr<Schema> {{
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .description(Some("{what}: a calendar date, YYYY-MM-DD."))
            .into()
    }}
}}

impl ToSchema for {name} {{}}

impl From<{name}> for String {{
    fn from(value: {name}) -> Self {{
        let date = value.0;
        format!("{{:04}}-{{:02}}-{{:02}}", date.year(), u8::from(date.month()), date.day())
    }}
}}
"#
    );
    let test = format!(
        r#"
    #[test]
    fn {field}_is_a_date_that_exists() {{
        let leap = {name}::try_from("2024-02-29".to_owned()).expect("valid");
        assert_eq!(String::from(leap), "2024-02-29");
        for bad in ["2023-02-29", "2024-2-29", "2024-02-29T00:00:00Z", "29.02.2024", "", "+2024-02-29"] {{
            assert!({name}::try_from(bad.to_owned()).is_err(), "{{bad:?}}");
        }}
    }}
"#
    );
    (code, test)
}

fn datetime_type(name: &str, what: &str, field: &str) -> (String, String) {
    let code = format!(
        r#"
/// {what}: an instant, RFC 3339 with its offset, kept in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct {name}(OffsetDateTime);

impl {name} {{
    #[must_use]
    pub fn get(self) -> OffsetDateTime {{
        self.0
    }}
}}

/// As the database gives it back.
impl From<OffsetDateTime> for {name} {{
    fn from(at: OffsetDateTime) -> Self {{
        Self(at.to_offset(UtcOffset::UTC))
    }}
}}

impl TryFrom<String> for {name} {{
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {{
        OffsetDateTime::parse(&value, &Rfc3339)
            .map(Self::from)
            .map_err(|_| "must be a date and time with its offset, e.g. 2026-01-31T12:00:00Z".to_owned())
    }}
}}

impl PartialSchema for {name} {{
    fn schema() -> RefOr<Schema> {{
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("{what}: an instant, RFC 3339 with its offset; answered in UTC."))
            .into()
    }}
}}

impl ToSchema for {name} {{}}

/// RFC 3339 writes every instant whose year has four digits, all that
/// parsing accepts; any other is written empty rather than panicking.
impl From<{name}> for String {{
    fn from(value: {name}) -> Self {{
        value.0.format(&Rfc3339).unwrap_or_default()
    }}
}}
"#
    );
    let test = format!(
        r#"
    #[test]
    fn {field}_is_an_instant_with_its_offset() {{
        let at = {name}::try_from("2026-01-31T13:00:00+01:00".to_owned()).expect("valid");
        assert_eq!(String::from(at), "2026-01-31T12:00:00Z", "kept in UTC");
        for bad in ["2026-01-31", "2026-01-31T12:00:00", "2026-01-31T12:00Z", "yesterday"] {{
            assert!({name}::try_from(bad.to_owned()).is_err(), "{{bad:?}}");
        }}
    }}
"#
    );
    (code, test)
}

/// What every text type has besides its rule: the text, its schema's
/// registration, and the way back to a `String`.
fn string_accessors(name: &str) -> String {
    format!(
        r"
impl {name} {{
    #[must_use]
    pub fn as_str(&self) -> &str {{
        &self.0
    }}
}}

impl ToSchema for {name} {{}}

impl From<{name}> for String {{
    fn from(value: {name}) -> Self {{
        value.0
    }}
}}
"
    )
}

/// The Rust type of a column as read.
fn row_type(resource: &Resource, field: &Field) -> String {
    match &field.kind {
        Kind::Line(_) | Kind::Text(_) => "String".to_owned(),
        Kind::Bool => "bool".to_owned(),
        Kind::Int(..) => "i64".to_owned(),
        Kind::Enum(_) | Kind::Decimal { .. } | Kind::Date | Kind::DateTime => field.type_name(resource),
        Kind::Ref(_) => "Option<Uuid>".to_owned(),
    }
}

/// The Rust type of a field as written: its domain type when it has a rule.
fn input_type(resource: &Resource, field: &Field) -> String {
    match &field.kind {
        Kind::Bool => "bool".to_owned(),
        Kind::Ref(_) => "Option<Uuid>".to_owned(),
        _ => field.type_name(resource),
    }
}

/// The expression that binds `value` (a field of the input) to a query.
fn bind(resource: &Resource, field: &Field, value: &str, changed: bool) -> String {
    let name = field.type_name(resource);
    match (&field.kind, changed) {
        (Kind::Line(_) | Kind::Text(_) | Kind::Enum(_), false) => format!("{value}.as_str()"),
        (Kind::Line(_) | Kind::Text(_), true) => format!("{value}.as_ref().map({name}::as_str)"),
        (Kind::Int(..) | Kind::Date | Kind::DateTime, false) => format!("{value}.get()"),
        (Kind::Int(..) | Kind::Date | Kind::DateTime, true) => format!("{value}.map({name}::get)"),
        (Kind::Decimal { .. }, false) => format!("{value}.units()"),
        (Kind::Decimal { .. }, true) => format!("{value}.map({name}::units)"),
        (Kind::Enum(_), true) => format!("{value}.map({name}::as_str)"),
        (Kind::Bool | Kind::Ref(_), _) => value.to_owned(),
    }
}

fn domain_imports(resource: &Resource) -> Vec<String> {
    resource
        .fields
        .iter()
        .filter(|field| has_domain_type(field))
        .map(|field| field.type_name(resource))
        .collect()
}

pub fn queries(resource: &Resource) -> String {
    let (a_prose, a_prose_cap) = resource.with_article();
    let (plural, ty) = (&resource.plural, resource.type_name());
    let names: Vec<&str> = resource.fields.iter().map(|field| field.name.as_str()).collect();
    let columns = format!("id, owner_id, {}, created_at, updated_at", names.join(", "));
    let row_fields: String = resource
        .fields
        .iter()
        .map(|field| {
            // Read through the domain type, so a row answers in its notation.
            let attribute = match field.kind {
                Kind::Enum(_) => "    #[sqlx(try_from = \"String\")]\n",
                Kind::Decimal { .. } => "    #[sqlx(try_from = \"i64\")]\n",
                Kind::Date => "    #[sqlx(try_from = \"time::Date\")]\n",
                Kind::DateTime => "    #[sqlx(try_from = \"OffsetDateTime\")]\n",
                _ => "",
            };
            format!("{attribute}    pub {}: {},\n", field.name, row_type(resource, field))
        })
        .collect();
    let new_fields: String = resource
        .fields
        .iter()
        .map(|field| format!("    pub {}: {},\n", field.name, input_type(resource, field)))
        .collect();
    let change_fields: String = resource
        .fields
        .iter()
        .map(|field| {
            format!(
                "    pub {}: Option<{}>,\n",
                field.name,
                input_type(resource, field).replace("Option<Uuid>", "Uuid")
            )
        })
        .collect();
    let count = resource.fields.len();
    let insert_values = (1..=count + 4).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
    let insert_binds: String = resource
        .fields
        .iter()
        .map(|field| format!("    .bind({})\n", bind(resource, field, &format!("new.{}", field.name), false)))
        .collect();
    let sets: String = resource
        .fields
        .iter()
        .enumerate()
        .map(|(index, field)| format!("{name} = COALESCE(${n}, {name}), ", name = field.name, n = index + 3))
        .collect();
    let update_binds: String = resource
        .fields
        .iter()
        .map(|field| {
            format!("    .bind({})\n", bind(resource, field, &format!("changes.{}", field.name), true))
        })
        .collect();
    let imports = domain_imports(resource);
    let domain_use = if imports.is_empty() {
        String::new()
    } else {
        format!("use crate::domain::{{{}}};\n", imports.join(", "))
    };
    let listing = if resource.shared {
        format!(
            r#"/// Up to `limit` {plural} of every owner after the id `after`, oldest first.
pub async fn page(pool: &Pool, after: Option<Uuid>, limit: u32) -> Result<Vec<{ty}>, sqlx::Error> {{
    sqlx::query_as(concat!("SELECT ", {plural}_columns!(), " FROM {plural} WHERE id > $1 ORDER BY id LIMIT $2"))
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}}
"#
        )
    } else {
        format!(
            r#"/// Up to `limit` {plural} of `owner` after the id `after`, oldest first.
pub async fn page_of_owner(
    pool: &Pool,
    owner: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<{ty}>, sqlx::Error> {{
    sqlx::query_as(concat!("SELECT ", {plural}_columns!(), " FROM {plural} WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
        .bind(owner)
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}}
"#
        )
    };
    format!(
        r#"//! The `{plural}` table. Writes filter on the owner in SQL, so a request can
//! never change {a_prose} it was not allowed to, even if a check upstream were
//! forgotten.

use time::OffsetDateTime;
use uuid::Uuid;

use super::Pool;
{domain_use}
/// {a_prose_cap} as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct {ty} {{
    pub id: Uuid,
    pub owner_id: Uuid,
{row_fields}    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}}

/// The fields a new {prose} is given, each parsed already.
pub struct New{ty} {{
{new_fields}}}

/// The fields a change sets; `None` keeps the stored value.
#[derive(Default)]
pub struct {ty}Changes {{
{change_fields}}}

macro_rules! {plural}_columns {{
    () => {{
        "{columns}"
    }};
}}

pub async fn insert(pool: &Pool, id: Uuid, owner: Uuid, new: &New{ty}) -> Result<{ty}, sqlx::Error> {{
    let now = OffsetDateTime::now_utc();
    sqlx::query_as(concat!(
        "INSERT INTO {plural} ({columns}) ",
        "VALUES ({insert_values}) RETURNING ",
        {plural}_columns!()
    ))
    .bind(id)
    .bind(owner)
{insert_binds}    .bind(now)
    .bind(now)
    .fetch_one(pool)
    .await
}}

pub async fn find(pool: &Pool, id: Uuid) -> Result<Option<{ty}>, sqlx::Error> {{
    sqlx::query_as(concat!("SELECT ", {plural}_columns!(), " FROM {plural} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}}

{listing}
/// Sets the given fields of `owner`'s {prose} `id` in one statement; `None`
/// when there is no such {prose} of that owner.
pub async fn update(pool: &Pool, id: Uuid, owner: Uuid, changes: &{ty}Changes) -> Result<Option<{ty}>, sqlx::Error> {{
    sqlx::query_as(concat!(
        "UPDATE {plural} SET {sets}updated_at = ${updated} ",
        "WHERE id = $1 AND owner_id = $2 RETURNING ",
        {plural}_columns!()
    ))
    .bind(id)
    .bind(owner)
{update_binds}    .bind(OffsetDateTime::now_utc())
    .fetch_optional(pool)
    .await
}}

/// Deletes `owner`'s {prose} `id`; `false` when there is no such {prose} of that owner.
pub async fn delete(pool: &Pool, id: Uuid, owner: Uuid) -> Result<bool, sqlx::Error> {{
    let result = sqlx::query("DELETE FROM {plural} WHERE id = $1 AND owner_id = $2")
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}}
"#,
        prose = resource.prose(),
        updated = count + 3,
    )
}

pub fn service(resource: &Resource) -> String {
    let (a_prose, a_prose_cap) = resource.with_article();
    let (plural, ty, types, prose) =
        (&resource.plural, resource.type_name(), resource.plural_type(), resource.prose());
    let references: Vec<(&Field, &str)> = resource.references().collect();
    let (rule, page, get) = if resource.shared {
        (
            if resource.admin_only {
                format!(
                    "Only admins reach these routes (the {plural} scopes are the admin role's alone); every admin reads every {prose}, only its owner changes or deletes one, and another admin's {prose} answers a change exactly like a missing one."
                )
            } else {
                format!(
                    "Every signed-in user with the {plural} scope reads every {prose}; only its owner changes or deletes one, and another user's {prose} answers a change exactly like a missing one."
                )
            },
            format!(
                r"/// A page of every {prose}, whoever owns it.
pub async fn page(db: &Pool, query: &PageQuery) -> Result<Page<{ty}>, {types}Error> {{
    let rows = db::{plural}::page(db, query.after, query.rows_to_fetch()).await?;
    Ok(query.page(rows, |row| row.id))
}}"
            ),
            format!(
                r"pub async fn get(db: &Pool, id: Uuid) -> Result<{ty}, {types}Error> {{
    db::{plural}::find(db, id).await?.ok_or({types}Error::NotFound)
}}"
            ),
        )
    } else {
        (
            format!(
                "Owners read their {plural}, admins everyone's (`authz::can_read_owned`); only the owner changes or deletes one. {a_prose_cap} the caller may not see answers exactly like a missing one, so ids cannot be probed."
            ),
            format!(
                r"/// A page of the caller's own {plural}; admins too see only their own here.
pub async fn page(db: &Pool, principal: &Principal, query: &PageQuery) -> Result<Page<{ty}>, {types}Error> {{
    let rows = db::{plural}::page_of_owner(db, principal.user_id()?, query.after, query.rows_to_fetch()).await?;
    Ok(query.page(rows, |row| row.id))
}}"
            ),
            format!(
                r"pub async fn get(db: &Pool, principal: &Principal, id: Uuid) -> Result<{ty}, {types}Error> {{
    let row = db::{plural}::find(db, id).await?.ok_or({types}Error::NotFound)?;
    if authz::can_read_owned(principal, row.owner_id) {{ Ok(row) }} else {{ Err({types}Error::NotFound) }}
}}"
            ),
        )
    };
    let (not_yours, check_create, check_update, check_fn) = if references.is_empty() {
        (String::new(), String::new(), String::new(), String::new())
    } else {
        let args = |from: &str| {
            references
                .iter()
                .map(|(field, _)| format!("{from}.{}", field.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let params = references
            .iter()
            .map(|(field, _)| format!("{}: Option<Uuid>", field.name))
            .collect::<Vec<_>>()
            .join(", ");
        let checks: String = references
            .iter()
            .map(|(field, target)| {
                format!(
                    "    if let Some(id) = {name} && db::{target}::find(db, id).await?.is_none_or(|row| row.owner_id != owner) {{\n        return Err({types}Error::NotYours(\"{name}\"));\n    }}\n",
                    name = field.name
                )
            })
            .collect();
        (
            "    /// A reference that names no row of the caller's own.\n    #[error(\"{0} names no row of the caller's own\")]\n    NotYours(&'static str),\n".to_string(),
            format!("    check_references(db, owner, {}).await?;\n", args("new")),
            format!("    check_references(db, owner, {}).await?;\n", args("changes")),
            format!(
                "\n/// Each reference must name a row of the caller's own: someone else's row\n/// and a missing one are refused alike.\nasync fn check_references(db: &Pool, owner: Uuid, {params}) -> Result<(), {types}Error> {{\n{checks}    Ok(())\n}}\n"
            ),
        )
    };
    let authz_use = if resource.shared { "" } else { "    authz,\n" };
    format!(
        r#"{docs}
use uuid::Uuid;

pub use crate::db::{plural}::{{New{ty}, {ty}, {ty}Changes}};
use crate::{{
    audit::{{Actor, Auditor, Event, Outcome}},
    auth::{{NoAccount, Principal}},
{authz_use}    db::{{self, Pool}},
    domain::{{Page, PageQuery}},
}};

/// Why {a_prose} operation failed, in this service's terms.
#[derive(Debug, thiserror::Error)]
pub enum {types}Error {{
    /// No such {prose}, or one the caller may not see or change.
    #[error("no such {prose}")]
    NotFound,
{not_yours}    #[error(transparent)]
    NoAccount(#[from] NoAccount),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}}

{page}

pub async fn create(db: &Pool, audit: &Auditor, principal: &Principal, new: &New{ty}) -> Result<{ty}, {types}Error> {{
    let owner = principal.user_id()?;
{check_create}    let row = db::{plural}::insert(db, Uuid::now_v7(), owner, new).await?;
    audit.record(changed("{plural}.created", principal, row.id));
    Ok(row)
}}

{get}

/// Changes the given fields of one of the caller's {plural}. Callers without an
/// account own none, so for them every {prose} is missing.
pub async fn update(
    db: &Pool,
    audit: &Auditor,
    principal: &Principal,
    id: Uuid,
    changes: &{ty}Changes,
) -> Result<{ty}, {types}Error> {{
    let owner = principal.user_id().map_err(|_| {types}Error::NotFound)?;
{check_update}    let row = db::{plural}::update(db, id, owner, changes).await?.ok_or({types}Error::NotFound)?;
    audit.record(changed("{plural}.updated", principal, id));
    Ok(row)
}}

pub async fn delete(db: &Pool, audit: &Auditor, principal: &Principal, id: Uuid) -> Result<(), {types}Error> {{
    let owner = principal.user_id().map_err(|_| {types}Error::NotFound)?;
    if !db::{plural}::delete(db, id, owner).await? {{
        return Err({types}Error::NotFound);
    }}
    audit.record(changed("{plural}.deleted", principal, id));
    Ok(())
}}

/// The audit event of a change: who, what, which {prose}; never its content.
fn changed(name: &'static str, principal: &Principal, id: Uuid) -> Event {{
    Event::new(name, Outcome::Success).actor(Actor::principal(principal)).target("{singular}", id.to_string())
}}
{check_fn}"#,
        docs = comment(
            "//!",
            &format!(
                "{}: the object rules applied to each {prose}. {rule} Every change is recorded in the audit trail.",
                capitalized(&resource.prose_plural())
            )
        ),
        singular = resource.singular,
    )
}

/// The largest request a valid body needs: every character of every text at
/// its longest escaped as a surrogate pair (12 bytes), plus room for the
/// rest, rounded up to KiB.
pub fn body_limit_kib(resource: &Resource) -> usize {
    let text: usize = resource
        .fields
        .iter()
        .map(|field| match field.kind {
            Kind::Line(max) | Kind::Text(max) => max * 12,
            Kind::Enum(ref values) => values.iter().map(String::len).max().unwrap_or(0),
            _ => 64,
        })
        .sum();
    (text + 1024).div_ceil(1024).max(4)
}

pub fn routes(resource: &Resource) -> String {
    let (a_prose, a_prose_cap) = resource.with_article();
    let (plural, ty, prose) = (&resource.plural, resource.type_name(), resource.prose());
    let response_fields: String = resource
        .fields
        .iter()
        .map(|field| format!("    pub {}: {},\n", field.name, row_type(resource, field)))
        .collect();
    let from_fields: String = resource
        .fields
        .iter()
        .map(|field| format!("            {name}: row.{name},\n", name = field.name))
        .collect();
    let body_fields: String = resource
        .fields
        .iter()
        .map(|field| {
            let default = match field.kind {
                Kind::Text(_) | Kind::Bool | Kind::Ref(_) => "    #[serde(default)]\n",
                _ => "",
            };
            format!("{default}    {}: {},\n", field.name, input_type(resource, field))
        })
        .collect();
    let patch_fields: String = resource
        .fields
        .iter()
        .map(|field| {
            format!(
                "    #[serde(default)]\n    {}: Option<{}>,\n",
                field.name,
                input_type(resource, field).replace("Option<Uuid>", "Uuid")
            )
        })
        .collect();
    let moved: String =
        resource.fields.iter().map(|field| format!("{name}: body.{name}, ", name = field.name)).collect();
    let imports = domain_imports(resource);
    let domain_use = imports.iter().map(|name| format!("{name}, ")).collect::<String>();
    let (list_args, list_call, get_args, get_call) = if resource.shared {
        ("", format!("{plural}::page(&state.db, &query)"), "", format!("{plural}::get(&state.db, id)"))
    } else {
        (
            "    principal: Principal,\n",
            format!("{plural}::page(&state.db, &principal, &query)"),
            "    principal: Principal,\n",
            format!("{plural}::get(&state.db, &principal, id)"),
        )
    };
    let who_reads = if resource.shared {
        format!("any {prose}")
    } else {
        format!("the caller's own, or any {prose} for an admin")
    };
    let missing = if resource.shared {
        format!("No such {prose}")
    } else {
        format!("No such {prose}, or not the caller's")
    };
    let list_what = if resource.shared { format!("every {prose}") } else { format!("the caller's {plural}") };
    format!(
        r#"//! `/api/v1/{plural}`: thin handlers over `{plural}`; who may call them is in
//! `authz::ROUTES` (the {plural} scopes).

use axum::{{Json, extract::DefaultBodyLimit, extract::State, http::StatusCode}};
use serde::{{Deserialize, Serialize}};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::{{router::OpenApiRouter, routes}};
use uuid::Uuid;

use crate::{{
    AppState,
    auth::Principal,
    domain::{{{domain_use}PageQuery}},
    http::{{
        ApiError, ErrorEnvelope,
        extract::{{IdPath, JsonBody, ValidQuery}},
    }},
    {plural}::{{self, New{ty}, {ty}, {ty}Changes}},
}};

/// Largest request: the longest valid {prose} with every character escaped
/// as a surrogate pair (12 bytes) fits, nothing much bigger does.
const BODY_LIMIT: usize = {kib} * 1024;

pub fn router() -> OpenApiRouter<AppState> {{
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}}

/// {a_prose_cap} as its readers see it. The owner is not shown: to others it
/// would be another user's internal id.
#[derive(Serialize, ToSchema)]
pub struct {ty}Response {{
    pub id: Uuid,
{response_fields}    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}}

impl From<{ty}> for {ty}Response {{
    fn from(row: {ty}) -> Self {{
        Self {{
            id: row.id,
{from_fields}            created_at: row.created_at,
            updated_at: row.updated_at,
        }}
    }}
}}

#[derive(Serialize, ToSchema)]
pub struct {ty}Page {{
    pub items: Vec<{ty}Response>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<Uuid>,
}}

/// Only these fields can be set: not `id`, not the owner, not timestamps.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct New{ty}Body {{
{body_fields}}}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct {ty}Patch {{
{patch_fields}}}

/// List {list_what}, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/{plural}",
    tag = "{plural}",
    params(PageQuery),
    responses(
        (status = OK, description = "A page of {list_what}", body = {ty}Page),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
{list_args}    ValidQuery(query): ValidQuery<PageQuery>,
) -> Result<Json<{ty}Page>, ApiError> {{
    let page = {list_call}.await?;
    Ok(Json({ty}Page {{ items: page.items.into_iter().map(Into::into).collect(), next_after: page.next_after }}))
}}

/// Create {a_prose} owned by the caller.
#[utoipa::path(
    post,
    path = "/api/v1/{plural}",
    tag = "{plural}",
    request_body = New{ty}Body,
    responses(
        (status = CREATED, description = "The new {prose}", body = {ty}Response),
        (status = FORBIDDEN, description = "The token lacks {plural}:write, or belongs to no account", body = ErrorEnvelope),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<New{ty}Body>,
) -> Result<(StatusCode, Json<{ty}Response>), ApiError> {{
    let new = New{ty} {{ {moved}}};
    let row = {plural}::create(&state.db, &state.audit, &principal, &new).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}}

/// Read {a_prose}: {who_reads}.
#[utoipa::path(
    get,
    path = "/api/v1/{plural}/{{id}}",
    tag = "{plural}",
    params(("id" = Uuid, Path, description = "The {prose}'s id")),
    responses(
        (status = OK, description = "The {prose}", body = {ty}Response),
        (status = NOT_FOUND, description = "{missing}", body = ErrorEnvelope),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
{get_args}    IdPath(id): IdPath,
) -> Result<Json<{ty}Response>, ApiError> {{
    Ok(Json({get_call}.await?.into()))
}}

/// Change fields of one of the caller's {plural}.
#[utoipa::path(
    patch,
    path = "/api/v1/{plural}/{{id}}",
    tag = "{plural}",
    params(("id" = Uuid, Path, description = "The {prose}'s id")),
    request_body = {ty}Patch,
    responses(
        (status = OK, description = "The changed {prose}", body = {ty}Response),
        (status = NOT_FOUND, description = "No such {prose}, or not the caller's", body = ErrorEnvelope),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<{ty}Patch>,
) -> Result<Json<{ty}Response>, ApiError> {{
    let changes = {ty}Changes {{ {moved}}};
    Ok(Json({plural}::update(&state.db, &state.audit, &principal, id, &changes).await?.into()))
}}

/// Delete one of the caller's {plural}.
#[utoipa::path(
    delete,
    path = "/api/v1/{plural}/{{id}}",
    tag = "{plural}",
    params(("id" = Uuid, Path, description = "The {prose}'s id")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, description = "No such {prose}, or not the caller's", body = ErrorEnvelope),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {{
    {plural}::delete(&state.db, &state.audit, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}}
"#,
        kib = body_limit_kib(resource),
    )
}

pub fn error_mapping(resource: &Resource) -> String {
    let (plural, types) = (&resource.plural, resource.plural_type());
    let not_yours = if resource.references().next().is_some() {
        format!(
            "            // Someone else's row and a missing one are refused alike, as input.\n            {types}Error::NotYours(field) => Self::Validation(vec![FieldError::new(field, \"must name one of your own\")]),\n"
        )
    } else {
        String::new()
    };
    format!(
        r"impl From<crate::{plural}::{types}Error> for ApiError {{
    fn from(err: crate::{plural}::{types}Error) -> Self {{
        use crate::{plural}::{types}Error;
        match err {{
            // Another user's {prose} answers exactly like a missing one.
            {types}Error::NotFound => Self::NotFound,
{not_yours}            {types}Error::NoAccount(err) => err.into(),
            {types}Error::Database(err) => err.into(),
        }}
    }}
}}
",
        prose = resource.prose()
    )
}

/// A valid JSON value for `field`, and one that breaks its rule.
fn samples(field: &Field) -> (String, Option<String>) {
    match &field.kind {
        Kind::Line(max) => ("\"A value\"".to_owned(), Some(format!("\"x\".repeat({})", literal(max + 1)))),
        Kind::Text(max) => {
            ("\"Some text\\nover lines\"".to_owned(), Some(format!("\"x\".repeat({})", literal(max + 1))))
        }
        Kind::Bool => ("true".to_owned(), Some("\"yes\"".to_owned())),
        Kind::Int(min, max) => {
            let valid = (*min).max((*max).min(0).max(*min));
            let invalid = if *max < i64::MAX {
                Some(format!("{}_i64", literal(max + 1)))
            } else if *min > i64::MIN {
                Some(format!("{}_i64", literal(min - 1)))
            } else {
                None
            };
            (format!("{}_i64", literal(valid)), invalid)
        }
        Kind::Decimal { scale, min, max } => {
            let valid = (*min).max((*max).min(0));
            let invalid = if *max < i64::MAX { max + 1 } else { min - 1 };
            (
                format!("\"{}\"", decimal_literal(valid, *scale)),
                Some(format!("\"{}\"", decimal_literal(invalid, *scale))),
            )
        }
        Kind::Date => ("\"2026-01-31\"".to_owned(), Some("\"2026-02-30\"".to_owned())),
        Kind::DateTime => ("\"2026-01-31T12:00:00Z\"".to_owned(), Some("\"2026-01-31 12:00\"".to_owned())),
        Kind::Enum(values) => (format!("\"{}\"", values[0]), Some("\"not one of them\"".to_owned())),
        Kind::Ref(_) => ("null".to_owned(), Some("uuid::Uuid::now_v7().to_string()".to_owned())),
    }
}

/// The tests of `resource`. `sampled` are the referenced resources whose
/// tests offer a valid body (`valid()`): for them, a reference is tested
/// both ways.
pub fn tests(resource: &Resource, sampled: &[&str]) -> String {
    let (plural, prose) = (&resource.plural, resource.prose());
    let references: String = resource
        .references()
        .filter(|(_, target)| sampled.contains(target))
        .map(|(field, target)| reference_test(&field.name, target))
        .collect();
    let valid: String =
        resource.fields.iter().map(|field| format!("\"{}\": {}, ", field.name, samples(field).0)).collect();
    let checks: String = resource
        .fields
        .iter()
        .filter_map(|field| {
            let (_, invalid) = samples(field);
            invalid.map(|invalid| format!("        (\"{}\", json!({invalid})),\n", field.name))
        })
        .collect();
    let changed = resource.fields.iter().find_map(|field| match field.kind {
        Kind::Line(_) => Some((field.name.clone(), "\"Changed\"".to_owned())),
        Kind::Bool => Some((field.name.clone(), "false".to_owned())),
        _ => None,
    });
    let patch = match &changed {
        Some((name, value)) => format!(
            "    let patched = app.call(\"PATCH\", &path, Some(&ann), Some(&json!({{\"{name}\": {value}}}))).await;\n    assert_eq!(patched.status, StatusCode::OK, \"{{}}\", String::from_utf8_lossy(&patched.body));\n    assert_eq!(patched.json()[\"{name}\"], json!({value}));\n"
        ),
        None => "    let patched = app.call(\"PATCH\", &path, Some(&ann), Some(&json!({}))).await;\n    assert_eq!(patched.status, StatusCode::OK);\n".to_owned(),
    };
    let (other_reads, other_lists) =
        if resource.shared { ("StatusCode::OK", "1") } else { ("StatusCode::NOT_FOUND", "0") };
    let tests = format!(
        r#"//! {title} (scaffolded): the object rules, the input rules and the scopes,
//! for every caller: anonymous, another user, the owner and an admin.

use app::db::Pool;
use axum::http::StatusCode;
use serde_json::{{Value, json}};

use crate::{{
    authz::{{Row, on_object, row}},
    helpers::{{PASSWORD, TestApp, grant_admin, reissued}},
}};

const PATH: &str = "/api/v1/{plural}";

/// A body that keeps every rule (other tests build theirs from it).
pub fn valid() -> Value {{
    json!({{{valid}}})
}}

/// This resource's rows of the authorization matrix (`authz::matrix`):
/// anonymous, another user, the owner, an admin.
pub fn matrix_rows() -> Vec<Row> {{
    let object = || (PATH, valid());
    vec![
        row("GET", PATH, None, [401, 200, 200, 200]),
        row("POST", PATH, Some(valid()), [401, 201, 201, 201]),
        on_object("GET", object(), None, [401, {other_get}, 200, 200]),
        on_object("PATCH", object(), Some(valid()), [401, 404, 200, 404]),
        on_object("DELETE", object(), None, [401, 404, 204, 404]),
    ]
}}

async fn create(app: &TestApp, token: &str) -> String {{
    let response = app.post(PATH, Some(token), &valid()).await;
    assert_eq!(response.status, StatusCode::CREATED, "{{}}", String::from_utf8_lossy(&response.body));
    format!("{{PATH}}/{{}}", response.json()["id"].as_str().expect("id"))
}}

/// The owner's whole round, each change in the audit trail.
#[sqlx::test]
async fn an_owner_creates_reads_lists_changes_and_deletes(pool: Pool) {{
    let app = TestApp::new(pool.clone()).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let path = create(&app, &ann).await;
    let read = app.get_as(&path, &ann).await;
    assert_eq!(read.status, StatusCode::OK);
    for (field, value) in valid().as_object().expect("object") {{
        assert_eq!(&read.json()[field], value, "{{field}}");
    }}
    assert!(!read.json().to_string().contains("owner"), "no owner id is shown");
    let listed = app.get_as(PATH, &ann).await.json();
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
{patch}    let deleted = app.call("DELETE", &path, Some(&ann), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get_as(&path, &ann).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let id = path.rsplit('/').next().expect("id");
    for action in ["created", "updated", "deleted"] {{
        let event = crate::audit::event(&pool, &format!("{plural}.{{action}}")).await;
        let target = (event.target_kind.as_deref(), event.target_id.as_deref());
        assert_eq!(target, (Some("{singular}"), Some(id)), "{{action}}");
    }}
}}

/// Every rule is checked while parsing, names its field and never echoes the
/// input; fields a client does not own are refused, not ignored.
#[sqlx::test]
async fn input_that_breaks_a_rule_is_refused_naming_its_field(pool: Pool) {{
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let path = create(&app, &ann).await;
    let broken: Vec<(&str, Value)> = vec![
{checks}    ];
    for (field, value) in broken {{
        let mut body = valid();
        body[field] = value;
        let created = app.post(PATH, Some(&ann), &body).await;
        let error = created.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert_eq!(error["details"][0]["field"], field, "{{error}}");
        let patched = app.call("PATCH", &path, Some(&ann), Some(&json!({{field: body[field]}}))).await;
        patched.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    }}
    for field in ["id", "owner_id", "created_at", "updated_at", "unknown"] {{
        let mut body = valid();
        body[field] = json!("00000000-0000-0000-0000-000000000000");
        let refused = app.post(PATH, Some(&ann), &body).await;
        refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    }}
}}

/// The ownership matrix: anonymous callers are refused, another user finds
/// an owner's {prose} {other_finds}, the owner does everything, an admin
/// reads it and changes nothing but their own.
#[sqlx::test]
async fn each_caller_gets_what_the_ownership_rules_say(pool: Pool) {{
    let app = TestApp::new(pool.clone()).await;
    let owner = app.signed_up("owner@example.com").await.access;
    let other = app.signed_up("other@example.com").await.access;
    let admin_id = app.register("admin@example.com").await["id"].as_str().expect("id").to_owned();
    grant_admin(&pool, &admin_id).await;
    let admin = app.login("admin@example.com", PASSWORD).await.access;
    let path = create(&app, &owner).await;
    let anonymous = [("GET", PATH), ("POST", PATH), ("GET", &path), ("PATCH", &path), ("DELETE", &path)];
    for (method, uri) in anonymous {{
        let response = app.call(method, uri, None, Some(&valid())).await;
        response.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }}
    assert_eq!(app.get_as(&path, &other).await.status, {other_reads});
    let listed = app.get_as(PATH, &other).await.json();
    assert_eq!(listed["items"].as_array().expect("items").len(), {other_lists});
    assert_eq!(app.get_as(&path, &admin).await.status, StatusCode::OK);
    let missing = format!("{{PATH}}/{{}}", uuid::Uuid::now_v7());
    for caller in [&other, &admin] {{
        for method in ["PATCH", "DELETE"] {{
            let theirs = app.call(method, &path, Some(caller), Some(&json!({{}}))).await;
            let absent = app.call(method, &missing, Some(caller), Some(&json!({{}}))).await;
            let theirs = theirs.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
            assert_eq!(theirs["message"], absent.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND")["message"]);
        }}
    }}
    assert_eq!(app.get_as(&path, &owner).await.status, StatusCode::OK, "nothing changed it");
}}

/// Scopes are enforced, not only listed: a token that may only read
/// {plural} reads them and writes none.
#[sqlx::test]
async fn a_token_that_may_only_read_writes_nothing(pool: Pool) {{
    let app = TestApp::new(pool).await;
    let full = app.signed_up("ann@example.com").await.access;
    let path = create(&app, &full).await;
    let read_only = reissued(&full, |claims| claims["scope"] = json!("{plural}:read"));
    assert_eq!(app.get_as(PATH, &read_only).await.status, StatusCode::OK);
    assert_eq!(app.get_as(&path, &read_only).await.status, StatusCode::OK);
    for (method, uri) in [("POST", PATH), ("PATCH", path.as_str()), ("DELETE", path.as_str())] {{
        let response = app.call(method, uri, Some(&read_only), Some(&valid())).await;
        response.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    }}
}}
{references}"#,
        title = capitalized(&resource.prose_plural()),
        singular = resource.singular,
        other_finds = if resource.shared { "and reads it" } else { "missing" },
        other_get = if resource.shared { 200 } else { 404 },
    );
    if resource.admin_only { admins_only(&tests, &resource.plural, &prose) } else { tests }
}

/// The tests of an admin-only resource: those of a shared one with admins
/// as its owners, the matrix's objects created by the admin, and the rules
/// of who reaches it.
fn admins_only(tests: &str, plural: &str, prose: &str) -> String {
    let mut tests = tests
        .replace("authz::{Row, on_object, row}", "authz::{Row, on_admins_object, row}")
        .replace("TestApp::new(pool).await", "TestApp::new(pool.clone()).await");
    for name in ["ann", "bob"] {
        tests = tests.replace(
            &format!("app.signed_up(\"{name}@example.com\").await.access"),
            &format!("admin(&app, &pool, \"{name}@example.com\").await"),
        );
    }
    let matrix_from = tests.find("pub fn matrix_rows()").unwrap_or(0);
    let matrix_to = matrix_from + tests[matrix_from..].find("\n}\n").map_or(0, |end| end + 3);
    let owners_from = tests.find("/// The ownership matrix:").unwrap_or(0);
    let owners_to = owners_from + tests[owners_from..].find("\n}\n").map_or(0, |end| end + 3);
    format!(
        r#"{before_matrix}pub fn matrix_rows() -> Vec<Row> {{
    let object = || (PATH, valid());
    vec![
        row("GET", PATH, None, [401, 403, 403, 200]),
        row("POST", PATH, Some(valid()), [401, 403, 403, 201]),
        on_admins_object("GET", object(), None, [401, 403, 403, 200]),
        on_admins_object("PATCH", object(), Some(valid()), [401, 403, 403, 200]),
        on_admins_object("DELETE", object(), None, [401, 403, 403, 204]),
    ]
}}

/// An admin's token: only admins reach these routes.
async fn admin(app: &TestApp, pool: &Pool, email: &str) -> String {{
    let id = app.register(email).await["id"].as_str().expect("id").to_owned();
    grant_admin(pool, &id).await;
    app.login(email, PASSWORD).await.access
}}
{between}/// Only admins reach {plural}: anonymous callers are refused, users are
/// forbidden everything, another admin reads the owner's {prose} and can
/// change it no more than a missing one.
#[sqlx::test]
async fn each_caller_gets_what_the_ownership_rules_say(pool: Pool) {{
    let app = TestApp::new(pool.clone()).await;
    let owner = admin(&app, &pool, "owner@example.com").await;
    let other = admin(&app, &pool, "other@example.com").await;
    let user = app.signed_up("user@example.com").await.access;
    let path = create(&app, &owner).await;
    for (method, uri) in [("GET", PATH), ("POST", PATH), ("GET", &path), ("PATCH", &path), ("DELETE", &path)] {{
        let anonymous = app.call(method, uri, None, Some(&valid())).await;
        anonymous.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let response = app.call(method, uri, Some(&user), Some(&valid())).await;
        response.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    }}
    assert_eq!(app.get_as(&path, &other).await.status, StatusCode::OK);
    let listed = app.get_as(PATH, &other).await.json();
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
    let missing = format!("{{PATH}}/{{}}", uuid::Uuid::now_v7());
    for method in ["PATCH", "DELETE"] {{
        let theirs = app.call(method, &path, Some(&other), Some(&json!({{}}))).await;
        let absent = app.call(method, &missing, Some(&other), Some(&json!({{}}))).await;
        let theirs = theirs.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(theirs["message"], absent.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND")["message"]);
    }}
    assert_eq!(app.get_as(&path, &owner).await.status, StatusCode::OK, "nothing changed it");
}}
{after}"#,
        before_matrix = &tests[..matrix_from],
        between = &tests[matrix_to..owners_from],
        after = &tests[owners_to..],
    )
}

/// A reference to the caller's own row is taken; someone else's and a
/// missing one are refused alike, naming the field.
fn reference_test(field: &str, target: &str) -> String {
    format!(
        r#"
/// `{field}` must name one of the caller's own {target}: theirs is taken,
/// someone else's and a missing one are refused alike.
#[sqlx::test]
async fn {field}_names_one_of_the_callers_own_{target}(pool: Pool) {{
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let bob = app.signed_up("bob@example.com").await.access;
    let mut ids = Vec::new();
    for token in [&ann, &bob] {{
        let created = app.post("/api/v1/{target}", Some(token), &crate::{target}::valid()).await;
        assert_eq!(created.status, StatusCode::CREATED, "{{}}", String::from_utf8_lossy(&created.body));
        ids.push(created.json()["id"].clone());
    }}
    let mut body = valid();
    body["{field}"] = ids[0].clone();
    let created = app.post(PATH, Some(&ann), &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{{}}", String::from_utf8_lossy(&created.body));
    assert_eq!(created.json()["{field}"], ids[0]);
    for other in [ids[1].clone(), json!(uuid::Uuid::now_v7().to_string())] {{
        body["{field}"] = other;
        let refused = app.post(PATH, Some(&ann), &body).await;
        let error = refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert_eq!(error["details"][0]["field"], "{field}");
    }}
}}
"#
    )
}

/// An integer as Rust code writes it: thousands grouped with `_` from five
/// digits on (clippy's `unreadable_literal`).
fn literal(value: impl std::fmt::Display) -> String {
    let text = value.to_string();
    let (sign, digits) = text.split_at(usize::from(text.starts_with('-')));
    if digits.len() < 5 {
        return text;
    }
    let mut grouped = sign.to_owned();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push('_');
        }
        grouped.push(digit);
    }
    grouped
}
