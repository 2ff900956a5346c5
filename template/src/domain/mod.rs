//! Domain values that carry rules, parsed once at the edge ("parse, don't
//! validate"): a handler that holds an `Email` never re-checks it.
//!
//! Each type deserializes through `TryFrom<String>`, so a JSON body that
//! breaks a rule is rejected by the extractor with the field's name and a
//! message that never echoes the input. Each bound is a constant that the
//! check, its message and the type's OpenAPI schema all read, so none of
//! them can disagree with the others.

mod display_name;
mod email;
mod filter;
mod link_token;
mod note;
mod page;
pub mod password;

pub use display_name::DisplayName;
pub use email::Email;
pub use filter::FilterText;
pub use link_token::LinkToken;
pub use note::{NoteBody, NoteTitle};
pub use page::{Page, PageLimit, PageQuery};
pub use password::Password;
use utoipa::openapi::{
    RefOr, Schema,
    schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type},
};

/// The rule shared by names and titles: trimmed, not empty, at most
/// `max_chars` characters, one line without control characters (which
/// could forge lines in logs or terminals).
fn single_line(value: &str, max_chars: usize) -> Result<String, String> {
    let line = value.trim();
    if line.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if line.chars().count() > max_chars {
        return Err(too_long(max_chars));
    }
    if line.chars().any(char::is_control) {
        return Err("must be one line without control characters".to_owned());
    }
    Ok(line.to_owned())
}

fn too_long(max_chars: usize) -> String {
    format!("must be at most {max_chars} characters")
}

/// The OpenAPI schema of a string type, from the same bounds its check uses.
fn string_schema(
    description: &str,
    min_chars: usize,
    max_chars: usize,
    format: Option<KnownFormat>,
    example: Option<&str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length((min_chars > 0).then_some(min_chars))
        .max_length(Some(max_chars))
        .format(format.map(SchemaFormat::KnownFormat))
        .examples(example)
        .into()
}
