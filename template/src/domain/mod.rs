//! Domain values that carry rules, parsed once at the edge ("parse, don't
//! validate"): a handler that holds an `Email` never re-checks it.
//!
//! Each type deserializes through `TryFrom<String>`, so a JSON body that
//! breaks a rule is rejected by the extractor with the field's name and a
//! message that never echoes the input.

mod display_name;
mod email;
mod note;
mod page;
pub mod password;

pub use display_name::DisplayName;
pub use email::Email;
pub use note::{NoteBody, NoteTitle};
pub use page::{Page, PageLimit, PageQuery};
pub use password::Password;

/// The rule shared by names and titles: trimmed, not empty, at most
/// `max_chars` characters, one line without control characters (which
/// could forge lines in logs or terminals).
fn single_line(value: &str, max_chars: usize, too_long: &'static str) -> Result<String, &'static str> {
    let line = value.trim();
    if line.is_empty() {
        return Err("must not be empty");
    }
    if line.chars().count() > max_chars {
        return Err(too_long);
    }
    if line.chars().any(char::is_control) {
        return Err("must be one line without control characters");
    }
    Ok(line.to_owned())
}
