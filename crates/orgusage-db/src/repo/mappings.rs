//! `user_client_mapping`: which client pays for which user. At most one active mapping per user,
//! enforced by a partial unique index (`orgusage_uq_user_client_mapping_active_user`).

use diesel::prelude::*;
use diesel::upsert::excluded;
use orgusage_domain::models::{mapping_id, validate_identifier};
use orgusage_domain::{
    Clock, Error, Result, UserClientMapping, UserClientMappingForm, UserClientMappingUpdate,
};

use crate::error::conflict_on_unique;
use crate::schema::client_organizations::dsl as co;
use crate::schema::user_client_mapping::{self, dsl as m};
use crate::{Database, with_conn, write_tx};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = user_client_mapping)]
#[diesel(check_for_backend(crate::backends::Sqlite, crate::backends::Pg))]
struct MappingRow {
    id: String,
    user_id: String,
    client_org_id: String,
    openrouter_user_id: String,
    is_active: bool,
    created_at: i64,
    updated_at: i64,
}

impl From<MappingRow> for UserClientMapping {
    fn from(r: MappingRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            client_org_id: r.client_org_id,
            openrouter_user_id: r.openrouter_user_id,
            is_active: r.is_active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Repository of `user_client_mapping`.
#[derive(Debug, Clone, Copy)]
pub struct MappingRepo<'a> {
    db: &'a Database,
    clock: &'a dyn Clock,
}

impl<'a> MappingRepo<'a> {
    /// A repository over `db` using `clock` for timestamps.
    pub fn new(db: &'a Database, clock: &'a dyn Clock) -> Self {
        Self { db, clock }
    }

    /// Maps a user to an active client.
    ///
    /// * The same (user, client) again, active or deactivated, reactivates the one row
    ///   `{user_id}_{client_org_id}` and takes the new `openrouter_user_id` (bug B34 fixed).
    /// * A user who is actively mapped to a *different* client gets [`Error::Conflict`]: moving a
    ///   user between paying clients must be explicit (`deactivate_mapping` first).
    /// * An unknown or inactive client is [`Error::NotFound`].
    pub fn create_mapping(&self, form: &UserClientMappingForm) -> Result<UserClientMapping> {
        let _span =
            tracing::debug_span!("orgusage.mappings.create", user_id = %form.user_id).entered();
        form.validate()?;
        let now = super::unix_now(self.clock);
        let row = MappingRow {
            id: mapping_id(&form.user_id, &form.client_org_id),
            user_id: form.user_id.clone(),
            client_org_id: form.client_org_id.clone(),
            openrouter_user_id: form.openrouter_user_id.clone(),
            is_active: true,
            created_at: now,
            updated_at: now,
        };
        let conflict = || {
            Error::Conflict(format!(
                "user {} already has an active mapping to another client",
                form.user_id
            ))
        };
        write_tx!(self.db, |conn| {
            let client_active: Option<bool> = co::client_organizations
                .find(&form.client_org_id)
                .select(co::is_active)
                .first(conn)
                .optional()?;
            if client_active != Some(true) {
                return Err(Error::NotFound {
                    entity: "client",
                    id: form.client_org_id.clone(),
                }
                .into());
            }
            let other: Option<String> = m::user_client_mapping
                .filter(
                    m::user_id
                        .eq(&form.user_id)
                        .and(m::is_active.eq(true))
                        .and(m::id.ne(&row.id)),
                )
                .select(m::client_org_id)
                .first(conn)
                .optional()?;
            if other.is_some() {
                return Err(conflict().into());
            }
            let upsert = diesel::insert_into(m::user_client_mapping)
                .values(&row)
                .on_conflict(m::id)
                .do_update()
                .set((
                    m::openrouter_user_id.eq(excluded(m::openrouter_user_id)),
                    m::is_active.eq(true),
                    m::updated_at.eq(excluded(m::updated_at)),
                ))
                .execute(conn);
            // A concurrent writer mapped the same user elsewhere between our check and insert.
            conflict_on_unique(upsert, conflict)?;
            Ok(m::user_client_mapping
                .find(&row.id)
                .select(MappingRow::as_select())
                .first(conn)?
                .into())
        })
    }

    /// The user's active mapping (there is at most one).
    pub fn get_mapping_by_user_id(&self, user_id: &str) -> Result<Option<UserClientMapping>> {
        with_conn!(self.db, |conn| {
            Ok(m::user_client_mapping
                .filter(m::user_id.eq(user_id).and(m::is_active.eq(true)))
                .select(MappingRow::as_select())
                .first(conn)
                .optional()?
                .map(Into::into))
        })
    }

    /// The active mapping whose OpenRouter `user` value is `openrouter_user_id` for this client.
    pub fn get_mapping_by_openrouter_user_id(
        &self,
        client_org_id: &str,
        openrouter_user_id: &str,
    ) -> Result<Option<UserClientMapping>> {
        with_conn!(self.db, |conn| {
            Ok(m::user_client_mapping
                .filter(
                    m::client_org_id
                        .eq(client_org_id)
                        .and(m::openrouter_user_id.eq(openrouter_user_id))
                        .and(m::is_active.eq(true)),
                )
                .order(m::user_id.asc())
                .select(MappingRow::as_select())
                .first(conn)
                .optional()?
                .map(Into::into))
        })
    }

    /// The client's active mappings, ordered by user id.
    pub fn get_mappings_by_client_id(&self, client_org_id: &str) -> Result<Vec<UserClientMapping>> {
        with_conn!(self.db, |conn| {
            Ok(m::user_client_mapping
                .filter(
                    m::client_org_id
                        .eq(client_org_id)
                        .and(m::is_active.eq(true)),
                )
                .order(m::user_id.asc())
                .select(MappingRow::as_select())
                .load(conn)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Deactivates the user's active mapping; `false` if the user has none.
    pub fn deactivate_mapping(&self, user_id: &str) -> Result<bool> {
        let now = super::unix_now(self.clock);
        write_tx!(self.db, |conn| {
            let target =
                m::user_client_mapping.filter(m::user_id.eq(user_id).and(m::is_active.eq(true)));
            Ok(diesel::update(target)
                .set((m::is_active.eq(false), m::updated_at.eq(now)))
                .execute(conn)?
                > 0)
        })
    }

    /// Applies a typed update to the user's active mapping; `false` if the user has none.
    pub fn update_mapping(&self, user_id: &str, update: &UserClientMappingUpdate) -> Result<bool> {
        validate_identifier("user_id", user_id)?;
        update.validate()?;
        let now = super::unix_now(self.clock);
        write_tx!(self.db, |conn| {
            let target =
                m::user_client_mapping.filter(m::user_id.eq(user_id).and(m::is_active.eq(true)));
            let n = match &update.openrouter_user_id {
                Some(v) => diesel::update(target)
                    .set((m::openrouter_user_id.eq(v), m::updated_at.eq(now)))
                    .execute(conn)?,
                None => target.count().get_result::<i64>(conn)? as usize,
            };
            Ok(n > 0)
        })
    }
}
