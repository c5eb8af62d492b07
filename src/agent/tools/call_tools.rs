//! `CallTools`: the tools of one call, backed by the store. Each tool is one store method, and
//! each store method writes its row and its webhook event in one transaction, so a tool call
//! cancelled half-way leaves nothing behind.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::arguments::{self, LeadDetails, call_tool_specs, is_e164};
use super::http_tool::HttpTool;
use super::{ToolError, ToolRunner, ToolSpec};
use crate::messaging::{Messaging, SendError};
use crate::store::{LeadPatch, NewAppointment, NewLead, NewMessage, Scope, Store, StoreError};

/// Leads captured by an agent on the phone say so.
const LEAD_SOURCE: &str = "call";

pub struct CallTools {
    store: Store,
    messaging: Messaging,
    scope: Scope,
    agent_id: String,
    call_id: String,
    caller_number: String,
    /// The call's wall-clock start (a replay's scenario time) and the instant it was taken,
    /// so "the past" is judged on the call's own clock.
    started_at: DateTime<Utc>,
    started: Instant,
    /// The lead captured on this call: appointments link to it, `update_lead` defaults to it.
    lead_id: Mutex<Option<String>>,
    /// The agent's `transfer_targets`: `transfer_call` goes nowhere else.
    transfer_targets: Vec<String>,
    /// The agent's operator tools, and whether they may reach loopback/private addresses
    /// (`BOLTCALL_WEBHOOK_ALLOW_LOOPBACK`, as for webhooks).
    http_tools: Vec<HttpTool>,
    http_allow_local: bool,
}

impl CallTools {
    pub fn new(
        messaging: Messaging,
        scope: Scope,
        agent_id: String,
        call_id: String,
        caller_number: String,
        started_at: DateTime<Utc>,
    ) -> Self {
        CallTools {
            store: messaging.store().clone(),
            messaging,
            scope,
            agent_id,
            call_id,
            caller_number,
            started_at,
            started: Instant::now(),
            lead_id: Mutex::new(None),
            transfer_targets: Vec::new(),
            http_tools: Vec::new(),
            http_allow_local: false,
        }
    }

    /// Offers the agent's operator tools beside the built-in ones.
    pub fn with_http_tools(mut self, tools: Vec<HttpTool>, allow_local: bool) -> Self {
        self.http_tools = tools;
        self.http_allow_local = allow_local;
        self
    }

    /// Allows `transfer_call` to these targets (none by default).
    pub fn with_transfer_targets(mut self, targets: Vec<String>) -> Self {
        self.transfer_targets = targets;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        self.started_at + self.started.elapsed()
    }

    fn call_lead(&self) -> Option<String> {
        self.lead_id.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn remember_lead(&self, id: &str) {
        if let Ok(mut lead) = self.lead_id.lock() {
            *lead = Some(id.to_string());
        }
    }

    async fn book_appointment(&self, args: Value) -> Result<Value, ToolError> {
        let booking = arguments::parse_booking(args)?;
        if booking.start_time <= self.now() {
            return Err(ToolError::InvalidArguments(
                "start_time is in the past; pick a time that is still ahead".into(),
            ));
        }
        let lead_id = match booking.lead_id {
            Some(id) => Some(self.known_lead(&id).await?),
            None => self.call_lead(),
        };
        let appointment = self
            .store
            .create_appointment(
                &self.scope,
                NewAppointment {
                    lead_id,
                    agent_id: Some(self.agent_id.clone()),
                    title: booking.title,
                    start_time: booking.start_time,
                    end_time: booking.end_time,
                },
            )
            .await
            .map_err(failed)?;
        tracing::info!(call_id = %self.call_id, appointment_id = %appointment.id, "appointment booked");
        to_json(&appointment)
    }

    /// A new lead, or when this call already has one, the same lead updated: one caller is one
    /// lead, however often the brain asks.
    async fn capture_lead(&self, args: Value) -> Result<Value, ToolError> {
        let mut details = arguments::parse_lead(args, true)?;
        if details.phone.is_none() && is_e164(&self.caller_number) {
            details.phone = Some(self.caller_number.clone());
        }
        if let Some(id) = self.call_lead() {
            return self.patch_lead(&id, details).await;
        }
        let Some(name) = details.name else {
            return Err(ToolError::InvalidArguments("name is required".into()));
        };
        let lead = self
            .store
            .create_lead(
                &self.scope,
                NewLead {
                    name,
                    phone: details.phone,
                    email: details.email,
                    source: Some(LEAD_SOURCE.into()),
                    tags: details.tags.unwrap_or_default(),
                },
            )
            .await
            .map_err(failed)?;
        self.remember_lead(&lead.id);
        tracing::info!(call_id = %self.call_id, lead_id = %lead.id, "lead captured");
        to_json(&lead)
    }

    async fn update_lead(&self, args: Value) -> Result<Value, ToolError> {
        let details = arguments::parse_lead(args, false)?;
        let id = match &details.lead_id {
            Some(id) => self.known_lead(id).await?,
            None => self.call_lead().ok_or_else(|| {
                ToolError::InvalidArguments(
                    "no lead has been captured on this call yet; call capture_lead first".into(),
                )
            })?,
        };
        self.patch_lead(&id, details).await
    }

    async fn patch_lead(&self, id: &str, details: LeadDetails) -> Result<Value, ToolError> {
        let patch = LeadPatch {
            name: details.name,
            phone: details.phone,
            email: details.email,
            tags: details.tags,
            ..LeadPatch::default()
        };
        let lead = self
            .store
            .update_lead(&self.scope, id, patch)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ToolError::InvalidArguments(format!("unknown lead_id {id:?}"))
                }
                other => failed(other),
            })?;
        to_json(&lead)
    }

    /// Texts the caller (or `to`) through the same messaging layer as the API, linked to this
    /// call's lead.
    async fn send_sms(&self, args: Value) -> Result<Value, ToolError> {
        let sms = arguments::parse_sms(args)?;
        let to = match sms.to {
            Some(to) => to,
            None if is_e164(&self.caller_number) => self.caller_number.clone(),
            None => {
                return Err(ToolError::InvalidArguments(
                    "the caller's number is unknown; give `to`".into(),
                ));
            }
        };
        let plan = self
            .store
            .workspace_plan(&self.scope)
            .await
            .map_err(failed)?;
        let request = NewMessage {
            channel: "sms".into(),
            to,
            from_number: None,
            body: Some(sms.body),
            template: None,
            variables: None,
            lead_id: self.call_lead(),
            segments: None,
        };
        let msg = self
            .messaging
            .send(&self.scope, plan, request)
            .await
            .map_err(|e| match e {
                SendError::Store(e) => failed(e),
                e @ SendError::TooLong(_) => ToolError::InvalidArguments(e.to_string()),
                other => ToolError::Failed(other.to_string()),
            })?;
        tracing::info!(call_id = %self.call_id, message_id = %msg.id, status = %msg.status, "sms sent from a call");
        to_json(&msg)
    }

    /// `id` names a lead this call's workspace can see.
    async fn known_lead(&self, id: &str) -> Result<String, ToolError> {
        match self.store.get_lead(&self.scope, id).await.map_err(failed)? {
            Some(lead) => Ok(lead.id),
            None => Err(ToolError::InvalidArguments(format!(
                "unknown lead_id {id:?}"
            ))),
        }
    }
}

fn failed(e: StoreError) -> ToolError {
    tracing::error!(error = %e, "call tool store error");
    ToolError::Failed("the booking system is unavailable right now".into())
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, ToolError> {
    serde_json::to_value(value).map_err(|e| ToolError::Failed(e.to_string()))
}

impl CallTools {
    /// Only to a target configured on the agent: a number the caller dictates or the model
    /// makes up is refused, so the engine cannot be talked into dialling premium numbers.
    fn transfer(&self, args: Value) -> Result<Value, ToolError> {
        let transfer = arguments::parse_transfer(args)?;
        if !arguments::is_allowed_transfer(&self.transfer_targets, &transfer.target) {
            tracing::warn!(call_id = %self.call_id, target = %transfer.target, "transfer to an unconfigured target refused");
            return Err(ToolError::InvalidArguments(
                if self.transfer_targets.is_empty() {
                    "this agent has no transfer targets; offer to take a message instead".into()
                } else {
                    format!("target must be one of {}", self.transfer_targets.join(", "))
                },
            ));
        }
        Ok(json!({"action": "transfer", "target": transfer.target}))
    }
}

impl ToolRunner for CallTools {
    fn specs(&self) -> Vec<ToolSpec> {
        let mut specs = call_tool_specs();
        specs.extend(self.http_tools.iter().map(HttpTool::spec));
        specs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            match name {
                arguments::BOOK_APPOINTMENT => self.book_appointment(arguments).await,
                arguments::CAPTURE_LEAD => self.capture_lead(arguments).await,
                arguments::UPDATE_LEAD => self.update_lead(arguments).await,
                arguments::END_CALL => {
                    arguments::parse_end(arguments)?;
                    Ok(json!({"action": "end_call"}))
                }
                arguments::SEND_SMS => self.send_sms(arguments).await,
                arguments::TRANSFER_CALL => self.transfer(arguments),
                arguments::SEND_DTMF => {
                    let keys = arguments::parse_dtmf(arguments)?;
                    tracing::info!(call_id = %self.call_id, keys = keys.as_str(), "DTMF keys queued");
                    // Queued, not sent: the session presses them once the words before have
                    // played.
                    Ok(json!({"action": "send_dtmf", "digits": keys.as_str(), "status": "queued"}))
                }
                other => match self.http_tools.iter().find(|t| t.name == other) {
                    Some(tool) => {
                        let result = tool
                            .run(arguments, &self.call_id, self.http_allow_local)
                            .await;
                        if let Err(e) = &result {
                            tracing::warn!(call_id = %self.call_id, tool = other, "operator tool failed: {e}");
                        }
                        result
                    }
                    None => Err(ToolError::Unknown(other.to_string())),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Store {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("boltcall-call-tools-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("store.db");
        let _ = std::fs::remove_file(&path);
        Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("store opens")
    }

    fn scope() -> Scope {
        Scope {
            workspace_id: "ws_test".into(),
            live: false,
        }
    }

    fn tools(store: &Store) -> CallTools {
        tools_at(store, Utc::now())
    }

    /// The tools of a call that started at `started_at`.
    fn tools_at(store: &Store, started_at: DateTime<Utc>) -> CallTools {
        CallTools::new(
            crate::messaging::Messaging::new(store.clone(), Default::default()),
            scope(),
            "agent_1".into(),
            "call_1".into(),
            "+14155550123".into(),
            started_at,
        )
        .with_transfer_targets(vec![
            "+14155550100".into(),
            "sip:desk@pbx.example.com".into(),
        ])
    }

    async fn events(store: &Store) -> Vec<String> {
        let mut events: Vec<String> = store
            .recent_events(&scope(), 50)
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        events.sort();
        events
    }

    #[tokio::test]
    async fn lead_then_booking_writes_rows_and_events() {
        let store = store().await;
        let tools = tools(&store);
        let lead = tools
            .call("capture_lead", json!({"name": "Jane Smith"}))
            .await
            .expect("lead");
        let lead_id = lead["id"].as_str().expect("id").to_string();
        assert_eq!(
            lead["phone"], "+14155550123",
            "the caller's number by default"
        );
        assert_eq!(lead["source"], "call");

        let updated = tools
            .call(
                "update_lead",
                json!({"email": "jane@example.com", "tags": ["cleaning"]}),
            )
            .await
            .expect("update");
        assert_eq!(updated["email"], "jane@example.com");

        let apt = tools
            .call(
                "book_appointment",
                json!({"title": "Cleaning", "start_time": "2030-03-27T10:00:00Z", "end_time": "2030-03-27T10:45:00Z"}),
            )
            .await
            .expect("booking");
        assert_eq!(apt["lead_id"].as_str(), Some(lead_id.as_str()));
        assert_eq!(apt["agent_id"], "agent_1");

        let stored = store
            .get_lead(&scope(), &lead_id)
            .await
            .expect("read")
            .expect("lead row");
        assert_eq!(stored.email.as_deref(), Some("jane@example.com"));
        let apt_id = apt["id"].as_str().expect("id");
        let row = store
            .get_appointment(&scope(), apt_id)
            .await
            .expect("read")
            .expect("appointment row");
        assert_eq!(row.title, "Cleaning");
        assert_eq!(
            events(&store).await,
            ["appointment.booked", "lead.created", "lead.updated"]
        );
    }

    #[tokio::test]
    async fn the_past_is_judged_on_the_calls_clock() {
        let store = store().await;
        let tools = tools_at(&store, "2026-03-25T09:00:00Z".parse().expect("time"));
        let booking = |start: &str, end: &str| json!({"title": "Cleaning", "start_time": start, "end_time": end});
        tools
            .call(
                "book_appointment",
                booking("2026-03-27T10:00:00Z", "2026-03-27T10:45:00Z"),
            )
            .await
            .expect("two days after the call started");
        let refused = tools
            .call(
                "book_appointment",
                booking("2026-03-24T10:00:00Z", "2026-03-24T10:45:00Z"),
            )
            .await;
        assert!(
            matches!(refused, Err(ToolError::InvalidArguments(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_second_capture_updates_the_same_lead() {
        let store = store().await;
        let tools = tools(&store);
        let first = tools
            .call("capture_lead", json!({"name": "Jane"}))
            .await
            .expect("lead");
        let second = tools
            .call("capture_lead", json!({"name": "Jane Smith"}))
            .await
            .expect("lead");
        assert_eq!(first["id"], second["id"]);
        assert_eq!(events(&store).await, ["lead.created", "lead.updated"]);
    }

    #[tokio::test]
    async fn bad_arguments_write_nothing() {
        let store = store().await;
        let tools = tools(&store);
        let cases = [
            (
                "book_appointment",
                json!({"title": "Cleaning", "start_time": "2030-03-27T10:00:00Z", "end_time": "2030-03-27T09:00:00Z"}),
            ),
            (
                "book_appointment",
                json!({"title": "Cleaning", "start_time": "2020-03-27T10:00:00Z", "end_time": "2020-03-27T11:00:00Z"}),
            ),
            (
                "book_appointment",
                json!({"title": "Cleaning", "start_time": "2030-03-27T10:00:00Z", "end_time": "2030-03-27T11:00:00Z", "lead_id": "lead_nope"}),
            ),
            ("capture_lead", json!({"name": "Jane", "phone": "555-1234"})),
            (
                "capture_lead",
                json!({"name": "Jane", "email": "jane at example"}),
            ),
            ("update_lead", json!({"email": "jane@example.com"})),
            (
                "update_lead",
                json!({"lead_id": "lead_nope", "email": "jane@example.com"}),
            ),
            ("transfer_call", json!({"target": "reception"})),
        ];
        for (name, args) in cases {
            let result = tools.call(name, args.clone()).await;
            assert!(
                matches!(result, Err(ToolError::InvalidArguments(_))),
                "{name} {args}: {result:?}"
            );
        }
        assert!(matches!(
            tools.call("launch_rocket", json!({})).await,
            Err(ToolError::Unknown(_))
        ));
        assert!(events(&store).await.is_empty());
    }

    #[tokio::test]
    async fn another_workspaces_lead_is_unknown() {
        let store = store().await;
        let other = Scope {
            workspace_id: "ws_other".into(),
            live: false,
        };
        let theirs = store
            .create_lead(
                &other,
                NewLead {
                    name: "Eve".into(),
                    phone: None,
                    email: None,
                    source: None,
                    tags: vec![],
                },
            )
            .await
            .expect("lead");
        let result = tools(&store)
            .call(
                "update_lead",
                json!({"lead_id": theirs.id, "name": "Mallory"}),
            )
            .await;
        assert!(
            matches!(result, Err(ToolError::InvalidArguments(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn call_control_tools_return_instructions() {
        let store = store().await;
        let tools = tools(&store);
        assert_eq!(
            tools
                .call("end_call", json!({"reason": "done"}))
                .await
                .expect("end"),
            json!({"action": "end_call"})
        );
        assert_eq!(
            tools
                .call("transfer_call", json!({"target": "+14155550100"}))
                .await
                .expect("transfer"),
            json!({"action": "transfer", "target": "+14155550100"})
        );
        assert_eq!(
            tools
                .call("send_dtmf", json!({"digits": "1#"}))
                .await
                .expect("keys"),
            json!({"action": "send_dtmf", "digits": "1#", "status": "queued"})
        );
        assert!(matches!(
            tools.call("send_dtmf", json!({"digits": "one"})).await,
            Err(ToolError::InvalidArguments(_))
        ));
        assert_eq!(tools.specs().len(), 7);
    }

    #[tokio::test]
    async fn send_sms_texts_the_caller_through_the_sandbox() {
        let store = store().await;
        let tools = tools(&store);
        let lead = tools
            .call("capture_lead", json!({"name": "Jane"}))
            .await
            .expect("lead");
        let msg = tools
            .call(
                "send_sms",
                json!({"body": "See you Friday at 10:00 — Bright Smile Dental"}),
            )
            .await
            .expect("sms");
        assert_eq!(msg["to"], "+14155550123", "the caller's number by default");
        assert_eq!(msg["lead_id"], lead["id"]);
        assert_eq!(
            msg["status"], "sent",
            "handed off; the sandbox's delivery follows"
        );
        assert_eq!(
            msg["segments"], 1,
            "the dash makes it UCS-2, still one segment"
        );
        for bad in [json!({"body": ""}), json!({"body": "hi", "to": "555"})] {
            let result = tools.call("send_sms", bad.clone()).await;
            assert!(
                matches!(result, Err(ToolError::InvalidArguments(_))),
                "{bad}: {result:?}"
            );
        }
        assert_eq!(events(&store).await, ["lead.created", "message.delivered"]);
    }

    #[tokio::test]
    async fn transfers_go_only_to_configured_targets() {
        let store = store().await;
        let tools = tools(&store);
        for target in [
            // A premium number the caller dictated or the model invented.
            "+19005550199",
            "sip:desk@pbx.example.com\r\nContact: <sip:toll@premium.example>",
            "sip:desk@pbx.example.com?X-Evil=1",
            "sip:desk@other.example.com",
        ] {
            let result = tools
                .call("transfer_call", json!({ "target": target }))
                .await;
            assert!(
                matches!(&result, Err(ToolError::InvalidArguments(m)) if m.contains("E.164") || m.contains("one of")),
                "{target:?}: {result:?}"
            );
        }
        assert!(
            tools
                .call(
                    "transfer_call",
                    json!({"target": "sip:desk@pbx.example.com"})
                )
                .await
                .is_ok()
        );
        let unconfigured = tools_at(&store, Utc::now()).with_transfer_targets(Vec::new());
        let refused = unconfigured
            .call("transfer_call", json!({"target": "+14155550100"}))
            .await;
        assert!(
            matches!(&refused, Err(ToolError::InvalidArguments(m)) if m.contains("no transfer targets")),
            "{refused:?}"
        );
    }
}
