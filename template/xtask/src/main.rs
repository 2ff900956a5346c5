//! The project's own tasks, run as `cargo xtask <task>`:
//!
//! - `scaffold <name> <field>:<type>[:<rule>] … [--shared | --admin-only] [--dry-run]`:
//!   a new resource, written the way `notes` is: owned, policy-checked,
//!   validated, audited, documented and tested (see `scaffold`).

mod scaffold;

use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo xtask scaffold <name> <field>:<type>[:<rule>] … [--shared | --admin-only] [--dry-run]

  <name>   the resource, plural, in snake_case (`widgets`); its routes are
           /api/v1/<name> and /api/v1/<name>/{id}
  types    string:<max chars>   one line, 1 to max characters
           text:<max chars>     line breaks allowed, 0 to max characters
           bool                 true or false (false unless given)
           int:<min>..<max>     a whole number in the range
           decimal:<min>..<max> an exact decimal in the range, as many digits
                                after the point as the bounds (0.00..999.99);
                                a string in JSON, whole units in the database
           date                 a calendar date, YYYY-MM-DD
           datetime             an instant, RFC 3339 with its offset (in UTC)
           enum:<a>|<b>|…       one of the values (snake_case)
           ref:<resource>       optional: one of the caller's own <resource>
  --shared     every signed-in user reads them all; only the owner changes one
  --admin-only only admins reach them (their scopes are the admin role's
               alone); every admin reads them all, the owner changes one
               (the default: only the owner, and admins, read one)
  --singular   the singular, when dropping the plural's s is wrong
  --dry-run    list the files it would write or change, and stop";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("scaffold") => scaffold::run(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
