//! Appointments: booked by agents' tools and the API, cancelled through the API.

use chrono::{DateTime, Utc};

use super::events::insert_event;
use super::{
    AppointmentRecord, Filter, NewAppointment, Page, PageRequest, Scope, Store, StoreError,
    fetch_page, format_ts, new_id, now_ts, on_reader, on_writer,
};

const COLUMNS: &str = "id, workspace_id, live, lead_id, agent_id, title, start_time, end_time, \
                       status, created_at";

#[derive(Debug, Clone, Default)]
pub struct AppointmentFilter {
    /// `upcoming` and `completed` are derived from the end time; `cancelled` is stored.
    pub status: Option<String>,
    pub agent_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Store {
    /// Books an appointment and writes `appointment.booked` in one transaction.
    pub async fn create_appointment(
        &self,
        scope: &Scope,
        new: NewAppointment,
    ) -> Result<AppointmentRecord, StoreError> {
        let now = now_ts();
        let apt = AppointmentRecord {
            id: new_id("apt_"),
            workspace_id: scope.workspace_id.clone(),
            live: scope.live,
            lead_id: new.lead_id,
            agent_id: new.agent_id,
            title: new.title,
            start_time: format_ts(new.start_time),
            end_time: format_ts(new.end_time),
            status: "upcoming".into(),
            created_at: now,
        };
        let sql = format!(
            "INSERT INTO appointments ({COLUMNS}, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)"
        );
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&apt.id)
                .bind(&apt.workspace_id)
                .bind(apt.live)
                .bind(&apt.lead_id)
                .bind(&apt.agent_id)
                .bind(&apt.title)
                .bind(&apt.start_time)
                .bind(&apt.end_time)
                .bind(&apt.status)
                .bind(&apt.created_at)
                .execute(&mut *tx)
                .await?;
            insert_event!(&mut *tx, &apt.workspace_id, apt.live, "appointment.booked", &apt)?;
            tx.commit().await?;
        });
        Ok(with_derived_status(apt))
    }

    pub async fn get_appointment(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<AppointmentRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM appointments WHERE workspace_id = $1 AND live = $2 AND id = $3"
        );
        let apt = on_reader!(self, pool => sqlx::query_as::<_, AppointmentRecord>(sqlx::AssertSqlSafe(sql))
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        Ok(apt.map(with_derived_status))
    }

    /// Cancels an appointment and writes `appointment.cancelled`; cancelling twice is a conflict.
    pub async fn cancel_appointment(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<AppointmentRecord, StoreError> {
        let Some(mut apt) = self.get_appointment(scope, id).await? else {
            return Err(StoreError::NotFound);
        };
        if apt.status == "cancelled" {
            return Err(StoreError::Conflict(format!(
                "appointment {id} is already cancelled"
            )));
        }
        apt.status = "cancelled".into();
        // The status guard makes two concurrent cancels produce one event and one conflict.
        let sql = "UPDATE appointments SET status = 'cancelled', updated_at = $1 \
                   WHERE id = $2 AND workspace_id = $3 AND live = $4 AND status <> 'cancelled'";
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql)
                .bind(now_ts())
                .bind(id)
                .bind(&scope.workspace_id)
                .bind(scope.live)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StoreError::Conflict(format!("appointment {id} is already cancelled")));
            }
            insert_event!(&mut *tx, &apt.workspace_id, apt.live, "appointment.cancelled", &apt)?;
            tx.commit().await?;
        });
        Ok(apt)
    }

    pub async fn list_appointments(
        &self,
        scope: &Scope,
        filter: &AppointmentFilter,
        page: PageRequest,
    ) -> Result<Page<AppointmentRecord>, StoreError> {
        let mut f = Filter::scoped(scope);
        let now = now_ts();
        match filter.status.as_deref() {
            Some("cancelled") => f.push("status", "=", "cancelled".into()),
            Some("upcoming") => {
                f.push("status", "<>", "cancelled".into());
                f.push("end_time", ">", now);
            }
            Some("completed") => {
                f.push("status", "<>", "cancelled".into());
                f.push("end_time", "<=", now);
            }
            _ => {}
        }
        if let Some(v) = &filter.agent_id {
            f.push("agent_id", "=", v.clone());
        }
        if let Some(v) = filter.from {
            f.push("start_time", ">=", format_ts(v));
        }
        if let Some(v) = filter.to {
            f.push("start_time", "<=", format_ts(v));
        }
        let Page { items, total } = fetch_page!(
            self,
            AppointmentRecord,
            COLUMNS,
            "appointments",
            f,
            "start_time ASC, id",
            page
        );
        Ok(Page {
            items: items.into_iter().map(with_derived_status).collect(),
            total,
        })
    }
}

/// A booked appointment whose end has passed is `completed`.
fn with_derived_status(mut apt: AppointmentRecord) -> AppointmentRecord {
    if apt.status == "upcoming" && apt.end_time <= now_ts() {
        apt.status = "completed".into();
    }
    apt
}
