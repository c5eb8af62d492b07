//! `/v1/knowledge_bases`: knowledge bases and their text documents, which agents link to with
//! `knowledge_base_id` and answer from.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Router, routing::delete, routing::get};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{ApiJson, PathId, QueryMap};
use super::page::{List, page_request};
use super::validate::{required, text};
use super::{ApiState, Deleted};
use crate::store::{KnowledgeBaseRecord, KnowledgeDocument, Scope};

/// Largest document text, in characters.
const MAX_DOCUMENT_CHARS: usize = 200_000;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/knowledge_bases", get(list).post(create))
        .route("/v1/knowledge_bases/{id}", get(fetch).delete(remove))
        .route(
            "/v1/knowledge_bases/{id}/documents",
            get(list_documents).post(add_document),
        )
        .route(
            "/v1/knowledge_bases/{id}/documents/{doc_id}",
            delete(remove_document),
        )
}

#[derive(Deserialize, ToSchema)]
pub struct CreateKnowledgeBase {
    /// Required.
    name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateDocument {
    /// Required.
    title: Option<String>,
    /// Plain text the agent may answer from (required, at most 200,000 characters).
    text: Option<String>,
}

/// A knowledge base with its documents.
#[derive(Serialize, ToSchema)]
pub struct KnowledgeBaseDetail {
    #[serde(flatten)]
    pub knowledge_base: KnowledgeBaseRecord,
    pub documents: Vec<KnowledgeDocument>,
}

/// `GET /v1/knowledge_bases/:id/documents`.
#[derive(Serialize, ToSchema)]
pub struct DocumentList {
    pub data: Vec<KnowledgeDocument>,
}

async fn find(state: &ApiState, scope: &Scope, id: &str) -> ApiResult<KnowledgeBaseRecord> {
    state
        .store
        .get_knowledge_base(scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No knowledge base {id}.")))
}

#[utoipa::path(get, path = "/v1/knowledge_bases", tag = "knowledge_bases",
    params(("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = List<KnowledgeBaseRecord>), (status = "default", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    q: QueryMap,
) -> ApiResult<Json<List<KnowledgeBaseRecord>>> {
    let page = page_request(&q)?;
    let kbs = state.store.list_knowledge_bases(&key.scope(), page).await?;
    Ok(Json(List::new(kbs, page)))
}

#[utoipa::path(post, path = "/v1/knowledge_bases", tag = "knowledge_bases",
    request_body = CreateKnowledgeBase,
    responses((status = 201, body = KnowledgeBaseRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    ApiJson(body): ApiJson<CreateKnowledgeBase>,
) -> ApiResult<(StatusCode, Json<KnowledgeBaseRecord>)> {
    let name = required(body.name, "name")?;
    text(&name, "name", 200)?;
    if let Some(d) = &body.description {
        text(d, "description", 2000)?;
    }
    let kb = state
        .store
        .create_knowledge_base(&key.scope(), name, body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(kb)))
}

#[utoipa::path(get, path = "/v1/knowledge_bases/{id}", tag = "knowledge_bases",
    params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeBaseDetail), (status = "default", body = ErrorEnvelope)))]
pub async fn fetch(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<KnowledgeBaseDetail>> {
    let scope = key.scope();
    let knowledge_base = find(&state, &scope, &id).await?;
    let documents = state.store.knowledge_documents(&scope, &id).await?;
    Ok(Json(KnowledgeBaseDetail {
        knowledge_base,
        documents,
    }))
}

#[utoipa::path(delete, path = "/v1/knowledge_bases/{id}", tag = "knowledge_bases",
    params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = "default", body = ErrorEnvelope)))]
pub async fn remove(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<Deleted>> {
    if state.store.delete_knowledge_base(&key.scope(), &id).await? {
        Ok(Json(Deleted { deleted: true }))
    } else {
        Err(ApiError::not_found(format!("No knowledge base {id}.")))
    }
}

#[utoipa::path(get, path = "/v1/knowledge_bases/{id}/documents", tag = "knowledge_bases",
    params(("id" = String, Path)),
    responses((status = 200, body = DocumentList), (status = "default", body = ErrorEnvelope)))]
pub async fn list_documents(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<DocumentList>> {
    let scope = key.scope();
    find(&state, &scope, &id).await?;
    let data = state.store.knowledge_documents(&scope, &id).await?;
    Ok(Json(DocumentList { data }))
}

#[utoipa::path(post, path = "/v1/knowledge_bases/{id}/documents", tag = "knowledge_bases",
    params(("id" = String, Path)), request_body = CreateDocument,
    responses((status = 201, body = KnowledgeDocument), (status = "default", body = ErrorEnvelope)))]
pub async fn add_document(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
    ApiJson(body): ApiJson<CreateDocument>,
) -> ApiResult<(StatusCode, Json<KnowledgeDocument>)> {
    let title = required(body.title, "title")?;
    let body_text = required(body.text, "text")?;
    text(&title, "title", 200)?;
    text(&body_text, "text", MAX_DOCUMENT_CHARS)?;
    match state
        .store
        .add_knowledge_document(&key.scope(), &id, title, body_text)
        .await
    {
        Ok(doc) => Ok((StatusCode::CREATED, Json(doc))),
        Err(crate::store::StoreError::NotFound) => {
            Err(ApiError::not_found(format!("No knowledge base {id}.")))
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(delete, path = "/v1/knowledge_bases/{id}/documents/{doc_id}", tag = "knowledge_bases",
    params(("id" = String, Path), ("doc_id" = String, Path)),
    responses((status = 200, body = Deleted), (status = "default", body = ErrorEnvelope)))]
pub async fn remove_document(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    Path((id, doc_id)): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    if state
        .store
        .delete_knowledge_document(&key.scope(), &id, &doc_id)
        .await?
    {
        Ok(Json(Deleted { deleted: true }))
    } else {
        Err(ApiError::not_found(format!(
            "No document {doc_id} in knowledge base {id}."
        )))
    }
}
