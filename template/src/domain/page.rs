use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How many items a page holds: 1 to 100, 20 when not asked. The upper
/// bound keeps one request from reading a whole table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(try_from = "u32")]
#[schema(value_type = u32, minimum = 1, maximum = 100, default = 20)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const MAX: u32 = 100;

    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(20)
    }
}

impl TryFrom<u32> for PageLimit {
    type Error = &'static str;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if (1..=Self::MAX).contains(&value) { Ok(Self(value)) } else { Err("must be between 1 and 100") }
    }
}

/// Keyset pagination: `after` is the last id of the previous page. Unlike
/// offsets, it stays fast on big tables and never skips or repeats rows
/// when others insert meanwhile.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<PageLimit>,
    /// The `next_after` of the previous page.
    #[serde(default)]
    pub after: Option<Uuid>,
}

impl PageQuery {
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or_default().get()
    }
}
