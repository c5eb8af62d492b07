//! Request extractors whose every rejection is the error envelope.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON object body decoded into `T` (whose fields are all optional: required ones are checked
/// by the handler so a missing field is `400` and a wrong one `422` naming it).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::http(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::http(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large")
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        decode_object(&bytes).map(ApiJson)
    }
}

/// Decodes a JSON object into `T`; on a type error, names the first field that fails alone.
pub fn decode_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    match serde_json::from_value::<T>(serde_json::Value::Object(map.clone())) {
        Ok(v) => Ok(v),
        Err(whole) => {
            for (key, field) in &map {
                let mut one = serde_json::Map::new();
                one.insert(key.clone(), field.clone());
                if let Err(e) = serde_json::from_value::<T>(serde_json::Value::Object(one)) {
                    return Err(ApiError::validation(key, strip_position(&e.to_string())));
                }
            }
            Err(ApiError::bad_request(format!("invalid body: {whole}")))
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Query parameters as strings; handlers parse each one and name it when it is wrong.
pub struct QueryMap(pub std::collections::HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(QueryMap)
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
    }
}

impl QueryMap {
    /// A parameter, with empty values treated as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A path id: anything not shaped like an id simply matches nothing (404).
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| PathId(p.0))
            .map_err(|_| ApiError::not_found("The requested resource does not exist."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Body {
        name: Option<String>,
        tags: Option<Vec<String>>,
    }

    #[test]
    fn wrong_type_names_the_field() {
        let ok = decode_object::<Body>(br#"{"name": "x", "tags": ["a"], "extra": 1}"#).unwrap();
        assert_eq!(ok.name.as_deref(), Some("x"));
        assert_eq!(ok.tags, Some(vec!["a".to_string()]));
        let err = decode_object::<Body>(br#"{"name": "x", "tags": [1]}"#).unwrap_err();
        assert_eq!(err.code, "validation_error");
        assert!(err.message.starts_with("`tags`"), "{}", err.message);
        let err = decode_object::<Body>(b"{not json").unwrap_err();
        assert_eq!(err.code, "bad_request");
        let err = decode_object::<Body>(b"[1]").unwrap_err();
        assert_eq!(err.code, "bad_request");
    }
}
