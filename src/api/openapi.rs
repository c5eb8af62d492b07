//! `GET /v1/openapi.json`: the OpenAPI 3.1 description, generated from the handlers and types.

use axum::Json;
use axum::{Router, routing::get};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    ApiState, agents, analytics, appointments, calls, knowledge, leads, messages, voices,
    web_calls, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Boltcall API", version = "1", description = "Voice agents, calls, leads, messaging, appointments, webhooks and analytics."),
    paths(
        agents::list, agents::create, agents::fetch, agents::update, agents::remove,
        calls::list, calls::fetch, calls::outbound, calls::recording, calls::transcript,
        leads::list, leads::create, leads::fetch, leads::update,
        messages::send_sms, messages::send_whatsapp, messages::list,
        appointments::list, appointments::fetch, appointments::create, appointments::cancel,
        webhooks::list, webhooks::create, webhooks::remove, webhooks::update,
        webhooks::deliveries, webhooks::test,
        analytics::overview, analytics::usage,
        voices::list,
        knowledge::list, knowledge::create, knowledge::fetch, knowledge::remove,
        knowledge::list_documents, knowledge::add_document, knowledge::remove_document,
        web_calls::start, web_calls::hang_up,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/openapi.json", get(document))
}

async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
