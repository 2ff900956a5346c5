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
pub use page::{PageLimit, PageQuery};
pub use password::Password;
