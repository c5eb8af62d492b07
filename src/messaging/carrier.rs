//! Twilio's messaging webhooks: `POST /carrier/twilio/sms` (an inbound SMS or WhatsApp message)
//! and `POST /carrier/twilio/sms/status` (an outbound message's status change). Both must carry
//! a valid `X-Twilio-Signature`: without an auth token to check it with, they are refused.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{Messaging, STATUS_CALLBACK_PATH, segments, status};
use crate::store::{InboundMessage, NewLead, Scope, StoreError};
use crate::telephony::twilio::signature;

/// Leads first heard of by message say so.
const LEAD_SOURCE: &str = "sms";
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

pub fn router(messaging: Messaging) -> Router {
    Router::new()
        .route("/carrier/twilio/sms", post(inbound))
        .route(STATUS_CALLBACK_PATH, post(status_callback))
        .with_state(messaging)
}

/// The form parameters of a correctly signed request, or why it is refused.
fn signed_params(
    messaging: &Messaging,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, (StatusCode, &'static str)> {
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "expected a form-encoded Twilio webhook",
        ));
    };
    let config = messaging.config();
    let Some(token) = config.twilio_auth_token.as_deref() else {
        tracing::warn!("twilio messaging webhook refused: BOLTCALL_TWILIO_AUTH_TOKEN is not set");
        return Err((
            StatusCode::FORBIDDEN,
            "set BOLTCALL_TWILIO_AUTH_TOKEN to accept Twilio messaging webhooks",
        ));
    };
    if !signature::is_valid_request(token, &config.public_url(), uri, headers, &params) {
        return Err((StatusCode::FORBIDDEN, "invalid X-Twilio-Signature"));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `POST /carrier/twilio/sms/status?message_id=…`: moves the message on, emitting
/// `message.delivered` on a real delivery.
async fn status_callback(
    State(messaging): State<Messaging>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match signed_params(&messaging, &uri, &headers, &body) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let (Some(id), Some(sid), Some(reported)) = (
        param(&query, "message_id"),
        param(&params, "MessageSid"),
        param(&params, "MessageStatus"),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected message_id, MessageSid and MessageStatus",
        )
            .into_response();
    };
    let error_code = param(&params, "ErrorCode").map(str::to_string);
    let error_message = param(&params, "ErrorMessage").map(str::to_string);
    let Some(change) = status::from_twilio(reported, error_code, error_message) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let store = messaging.store();
    // A report names its message twice, our id in the URL and Twilio's SID: they must agree.
    match store.message_by_provider_sid(sid).await {
        Ok(Some(known)) if known.id != id => {
            return (
                StatusCode::BAD_REQUEST,
                "MessageSid belongs to another message",
            )
                .into_response();
        }
        Ok(_) => {}
        Err(e) => return store_failure(e),
    }
    match store.change_message_status(id, &change).await {
        Ok(Some(msg)) => {
            tracing::info!(message_id = %msg.id, status = %msg.status, "message status reported");
            if let Err(e) = store.record_acceptance(id, Some(sid), None).await {
                return store_failure(e);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        // Unknown, or already past this status: nothing to change.
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_failure(e),
    }
}

/// `POST /carrier/twilio/sms`: stores the message in the workspace whose agent owns the number
/// it was sent to, linked to the sender's lead (created with source `sms` when new), and emits
/// `message.received`. Answers with empty TwiML: the reply, if any, comes from the API.
async fn inbound(
    State(messaging): State<Messaging>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match signed_params(&messaging, &uri, &headers, &body) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let sid = param(&params, "MessageSid").or_else(|| param(&params, "SmsSid"));
    let (Some(sid), Some(from), Some(to)) = (sid, param(&params, "From"), param(&params, "To"))
    else {
        return (StatusCode::BAD_REQUEST, "expected MessageSid, From and To").into_response();
    };
    let channel = if to.starts_with("whatsapp:") {
        "whatsapp"
    } else {
        "sms"
    };
    let strip = |n: &str| n.trim_start_matches("whatsapp:").to_string();
    let text = param(&params, "Body").map(str::to_string);
    let inbound = Inbound {
        channel,
        to: strip(to),
        from: strip(from),
        sid: sid.to_string(),
        body: text,
    };
    match store_inbound(&messaging, inbound).await {
        Ok(()) => ([(header::CONTENT_TYPE, "application/xml")], EMPTY_TWIML).into_response(),
        Err(e) => store_failure(e),
    }
}

struct Inbound {
    channel: &'static str,
    to: String,
    from: String,
    sid: String,
    body: Option<String>,
}

async fn store_inbound(messaging: &Messaging, m: Inbound) -> Result<(), StoreError> {
    let store = messaging.store();
    // Messages through the carrier reach live agents only.
    let Some(agent) = store.find_agent_by_phone(&m.to, true).await? else {
        tracing::info!(to = %m.to, sid = %m.sid, "inbound message to a number no agent owns");
        return Ok(());
    };
    if store.message_by_provider_sid(&m.sid).await?.is_some() {
        // Twilio retried a message already stored.
        return Ok(());
    }
    let scope = Scope {
        workspace_id: agent.workspace_id,
        live: agent.live,
    };
    let lead_id = match store.lead_id_by_phone(&scope, &m.from).await? {
        Some(id) => id,
        None => {
            store
                .create_lead(
                    &scope,
                    NewLead {
                        name: m.from.clone(),
                        phone: Some(m.from.clone()),
                        email: None,
                        source: Some(LEAD_SOURCE.into()),
                        tags: Vec::new(),
                    },
                )
                .await?
                .id
        }
    };
    let segments = (m.channel == "sms")
        .then(|| i64::from(segments::count(m.body.as_deref().unwrap_or_default()).1));
    let stored = store
        .create_inbound_message(
            &scope,
            InboundMessage {
                channel: m.channel.into(),
                to: m.to,
                from_number: m.from,
                body: m.body,
                provider_sid: m.sid,
                lead_id,
                segments,
            },
        )
        .await?;
    if let Some(msg) = stored {
        tracing::info!(message_id = %msg.id, lead_id = ?msg.lead_id, "message received");
    }
    Ok(())
}

fn store_failure(e: StoreError) -> Response {
    tracing::error!("twilio messaging webhook: {e}");
    // A 5xx makes Twilio try the webhook again later.
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}
