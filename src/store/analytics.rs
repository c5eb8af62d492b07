//! Analytics computed from stored rows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::messages::COUNTED_SMS;
use super::{Scope, Store, StoreError, format_ts, now_ts, on_reader};

#[derive(Debug, Serialize, ToSchema)]
pub struct Period {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallCounts {
    pub total: i64,
    /// Calls that were answered (completed or still in progress).
    pub answered: i64,
    /// Inbound calls not answered, and outbound calls that got no answer or busy.
    pub missed: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadCounts {
    pub captured: i64,
    pub qualified: i64,
    pub converted: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageCounts {
    pub sent: i64,
    pub delivered: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentCounts {
    pub booked: i64,
    pub completed: i64,
    pub cancelled: i64,
}

/// `GET /v1/analytics/overview`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub period: Period,
    pub calls: CallCounts,
    pub leads: LeadCounts,
    pub messages: MessageCounts,
    pub appointments: AppointmentCounts,
    /// Mean time from the end of the caller's speech to the agent's first audio over the period's
    /// calls (`latency.turns[].voice_to_voice_ms`, as the turn machine records it); 0 when none.
    pub avg_response_time_seconds: f64,
}

/// `GET /v1/analytics/usage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub billing_period: Period,
    pub minutes_used: i64,
    pub minutes_limit: i64,
    pub sms_sent: i64,
    pub sms_limit: i64,
    pub api_calls: i64,
}

/// The billing period (a calendar month, UTC) that holds `today`.
pub fn billing_period(today: chrono::NaiveDate) -> Period {
    use chrono::Datelike;
    let first = today.with_day(1).unwrap_or(today);
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(today);
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    Period {
        from: day(first),
        to: day(last),
    }
}

impl Store {
    /// Counts of the scope's calls, leads, messages and appointments created in `[from, to]`.
    pub async fn overview(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        period: Period,
    ) -> Result<Overview, StoreError> {
        let (from, to) = (format_ts(from), format_ts(to));
        let now = now_ts();
        let calls_sql = "SELECT COUNT(*), \
             COALESCE(SUM(CASE WHEN status IN ('completed', 'in-progress') THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status IN ('missed', 'no-answer', 'busy') THEN 1 ELSE 0 END), 0) \
             FROM calls WHERE workspace_id = $1 AND live = $2 AND created_at >= $3 AND created_at <= $4";
        let leads_sql = "SELECT COUNT(*), \
             COALESCE(SUM(CASE WHEN status = 'qualified' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'converted' THEN 1 ELSE 0 END), 0) \
             FROM leads WHERE workspace_id = $1 AND live = $2 AND created_at >= $3 AND created_at <= $4";
        let messages_sql = "SELECT COALESCE(SUM(CASE WHEN status IN ('sent', 'delivered', 'undelivered') THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) \
             FROM messages WHERE workspace_id = $1 AND live = $2 AND direction = 'outbound' \
             AND created_at >= $3 AND created_at <= $4";
        let appointments_sql = "SELECT COUNT(*), \
             COALESCE(SUM(CASE WHEN status <> 'cancelled' AND end_time <= $5 THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0) \
             FROM appointments WHERE workspace_id = $1 AND live = $2 AND created_at >= $3 AND created_at <= $4";
        let latency_sql = "SELECT latency FROM calls WHERE workspace_id = $1 AND live = $2 \
             AND created_at >= $3 AND created_at <= $4 AND ended_at IS NOT NULL";
        let (calls, leads, messages, appointments, latencies) = on_reader!(self, pool => {
            let calls: (i64, i64, i64) = sqlx::query_as(calls_sql)
                .bind(&scope.workspace_id).bind(scope.live).bind(&from).bind(&to)
                .fetch_one(pool).await?;
            let leads: (i64, i64, i64) = sqlx::query_as(leads_sql)
                .bind(&scope.workspace_id).bind(scope.live).bind(&from).bind(&to)
                .fetch_one(pool).await?;
            let messages: (i64, i64) = sqlx::query_as(messages_sql)
                .bind(&scope.workspace_id).bind(scope.live).bind(&from).bind(&to)
                .fetch_one(pool).await?;
            let appointments: (i64, i64, i64) = sqlx::query_as(appointments_sql)
                .bind(&scope.workspace_id).bind(scope.live).bind(&from).bind(&to).bind(&now)
                .fetch_one(pool).await?;
            let latencies: Vec<(String,)> = sqlx::query_as(latency_sql)
                .bind(&scope.workspace_id).bind(scope.live).bind(&from).bind(&to)
                .fetch_all(pool).await?;
            (calls, leads, messages, appointments, latencies)
        });
        Ok(Overview {
            period,
            calls: CallCounts {
                total: calls.0,
                answered: calls.1,
                missed: calls.2,
            },
            leads: LeadCounts {
                captured: leads.0,
                qualified: leads.1,
                converted: leads.2,
            },
            messages: MessageCounts {
                sent: messages.0,
                delivered: messages.1,
            },
            appointments: AppointmentCounts {
                booked: appointments.0,
                completed: appointments.1,
                cancelled: appointments.2,
            },
            avg_response_time_seconds: mean_response_seconds(
                latencies.iter().map(|(t,)| t.as_str()),
            ),
        })
    }

    /// Usage of the scope between the UTC days `from_day` and `to_day` (inclusive).
    pub async fn usage(
        &self,
        scope: &Scope,
        from_day: &str,
        to_day: &str,
    ) -> Result<(i64, i64, i64), StoreError> {
        // PostgreSQL sums BIGINT into NUMERIC: cast back so both engines decode an i64.
        let minutes_sql = "SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM call_minutes \
             WHERE workspace_id = $1 AND live = $2 AND day >= $3 AND day <= $4";
        let api_sql = "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) FROM api_usage \
             WHERE workspace_id = $1 AND live = $2 AND day >= $3 AND day <= $4";
        // Message timestamps start with the day, so a day range is a text range.
        let sms_sql = format!(
            "SELECT COUNT(*) FROM messages WHERE workspace_id = $1 AND live = $2 \
             AND {COUNTED_SMS} AND created_at >= $3 AND created_at < $4"
        );
        let after_last_day = format!("{to_day}T99");
        Ok(on_reader!(self, pool => {
            let (minutes,): (i64,) = sqlx::query_as(minutes_sql)
                .bind(&scope.workspace_id).bind(scope.live).bind(from_day).bind(to_day)
                .fetch_one(pool).await?;
            let (api,): (i64,) = sqlx::query_as(api_sql)
                .bind(&scope.workspace_id).bind(scope.live).bind(from_day).bind(to_day)
                .fetch_one(pool).await?;
            let (sms,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sms_sql.clone()))
                .bind(&scope.workspace_id).bind(scope.live).bind(from_day).bind(&after_last_day)
                .fetch_one(pool).await?;
            (minutes, sms, api)
        }))
    }
}

/// Mean of every `turns[].voice_to_voice_ms` in the stored latency documents, in seconds.
fn mean_response_seconds<'a>(latencies: impl Iterator<Item = &'a str>) -> f64 {
    let (mut sum, mut n) = (0.0, 0u32);
    for text in latencies {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            continue;
        };
        let Some(turns) = value.get("turns").and_then(|t| t.as_array()) else {
            continue;
        };
        for ms in turns
            .iter()
            .filter_map(|t| t.get("voice_to_voice_ms")?.as_f64())
        {
            sum += ms;
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        (sum / f64::from(n) / 1000.0 * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_response_reads_turns_and_skips_junk() {
        let docs = [
            r#"{"turns":[{"voice_to_voice_ms":400},{"voice_to_voice_ms":600}]}"#,
            r#"{"turns":[{"stt_ms":10}]}"#,
            "not json",
            r#"{}"#,
        ];
        assert_eq!(mean_response_seconds(docs.into_iter()), 0.5);
        assert_eq!(mean_response_seconds([].into_iter()), 0.0);
    }
}
