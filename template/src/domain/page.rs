use serde::Deserialize;
use utoipa::{
    IntoParams, PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type},
    },
};
use uuid::Uuid;

/// How many items a page holds: 1 to `MAX`, `DEFAULT` when not asked. The
/// upper bound keeps one request from reading a whole table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct PageLimit(u32);

impl PageLimit {
    pub const MAX: u32 = 100;
    pub const DEFAULT: u32 = 20;

    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

impl TryFrom<u32> for PageLimit {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("must be between 1 and {}", Self::MAX))
        }
    }
}

impl PartialSchema for PageLimit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(1))
            .maximum(Some(Self::MAX))
            .default(Some(Self::DEFAULT.into()))
            .into()
    }
}

impl ToSchema for PageLimit {}

/// Keyset pagination: `after` is the last id of the previous page. Unlike
/// offsets, it stays fast on big tables and never skips or repeats rows
/// when others insert meanwhile.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[serde(default)]
    #[param(inline)]
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

    /// How many rows to fetch for this page: one more than it holds, which
    /// tells whether another page follows.
    #[must_use]
    pub fn rows_to_fetch(&self) -> u32 {
        self.limit() + 1
    }

    /// The page made of `rows` (fetched with `rows_to_fetch`, ordered by
    /// `id`): at most `limit` items, and where the next page starts.
    #[must_use]
    pub fn page<T>(&self, rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> Page<T> {
        Page::of(rows, self.limit(), id)
    }
}

/// One page of a list, and the `after` of the next one (`None` on the
/// last); `K` is the key the list is ordered by.
#[derive(Debug, PartialEq, Eq)]
pub struct Page<T, K = Uuid> {
    pub items: Vec<T>,
    pub next_after: Option<K>,
}

impl<T, K> Page<T, K> {
    /// The page made of `rows`, fetched as `limit + 1` rows ordered by
    /// `key`: the extra row only tells that another page follows.
    #[must_use]
    pub fn of(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_after = if more { rows.last().map(key) } else { None };
        Self { items: rows, next_after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_at_most_its_limit_and_knows_whether_more_follow() {
        let query = PageQuery { limit: Some(PageLimit(2)), after: None };
        assert_eq!(query.rows_to_fetch(), 3);
        let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
        let page = query.page(ids.clone(), |id| *id);
        assert_eq!((page.items, page.next_after), (ids[..2].to_vec(), Some(ids[1])));
        let last = query.page(ids[..2].to_vec(), |id| *id);
        assert_eq!(last.next_after, None);
    }
}
