//! The JSON Schema subset operator tools may declare, and validation of a model's arguments
//! against it. A schema using a keyword outside the subset is refused when the agent is saved:
//! the engine only accepts rules it actually enforces.

use serde_json::{Map, Value};

/// Keywords that only describe; accepted anywhere and ignored by validation.
const ANNOTATIONS: &[&str] = &["description", "title", "examples", "default", "format"];
/// Keywords validation enforces.
const RULES: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
];
const TYPES: &[&str] = &[
    "object", "array", "string", "number", "integer", "boolean", "null",
];
/// Nesting deeper than this is refused (a model's arguments are small objects).
const MAX_DEPTH: usize = 8;

/// Whether `schema` is an object schema of the supported subset; the error names the path.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err("must be a JSON Schema with \"type\": \"object\"".into());
    }
    check_node(schema, "", 0)
}

fn check_node(schema: &Value, path: &str, depth: usize) -> Result<(), String> {
    let at = |p: &str| {
        if p.is_empty() {
            "the schema".to_string()
        } else {
            p.to_string()
        }
    };
    if depth > MAX_DEPTH {
        return Err(format!("{} nests deeper than {MAX_DEPTH} levels", at(path)));
    }
    let Some(node) = schema.as_object() else {
        return Err(format!("{} must be an object", at(path)));
    };
    for (key, value) in node {
        if ANNOTATIONS.contains(&key.as_str()) {
            continue;
        }
        if !RULES.contains(&key.as_str()) {
            return Err(format!(
                "{}: keyword {key:?} is not supported (supported: {})",
                at(path),
                RULES.join(", ")
            ));
        }
        let here = format!("{path}/{key}");
        match key.as_str() {
            "type" => check_type(value).map_err(|e| format!("{here}: {e}"))?,
            "properties" => {
                let Some(props) = value.as_object() else {
                    return Err(format!("{here} must be an object"));
                };
                for (name, sub) in props {
                    check_node(sub, &format!("{here}/{name}"), depth + 1)?;
                }
            }
            "items" => check_node(value, &here, depth + 1)?,
            "required" => {
                let names = value.as_array().filter(|a| a.iter().all(Value::is_string));
                if names.is_none() {
                    return Err(format!("{here} must be an array of property names"));
                }
            }
            "additionalProperties" if !value.is_boolean() => {
                return Err(format!("{here} must be true or false"));
            }
            "enum" if value.as_array().is_none_or(Vec::is_empty) => {
                return Err(format!("{here} must be a non-empty array"));
            }
            "minimum" | "maximum" if !value.is_number() => {
                return Err(format!("{here} must be a number"));
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" if !value.is_u64() => {
                return Err(format!("{here} must be a non-negative integer"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_type(value: &Value) -> Result<(), String> {
    let names: Vec<&Value> = match value {
        Value::Array(list) if !list.is_empty() => list.iter().collect(),
        single => vec![single],
    };
    for name in names {
        match name.as_str() {
            Some(t) if TYPES.contains(&t) => {}
            _ => return Err(format!("{name} is not a JSON type ({})", TYPES.join(", "))),
        }
    }
    Ok(())
}

/// Checks `value` against `schema` (already accepted by `check_schema`); the error says what to
/// fix, in words a model can act on.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    validate_at(schema, value, "arguments")
}

fn validate_at(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(rules) = schema.as_object() else {
        return Ok(());
    };
    if let Some(types) = rules.get("type")
        && !type_matches(types, value)
    {
        return Err(format!("{path} must be of type {types}"));
    }
    if let Some(allowed) = rules.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!(
            "{path} must be one of {}",
            Value::from(allowed.clone())
        ));
    }
    match value {
        Value::Object(fields) => validate_object(rules, fields, path)?,
        Value::Array(items) => {
            bound(rules, "minItems", "maxItems", items.len(), path, "items")?;
            if let Some(item_schema) = rules.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate_at(item_schema, item, &format!("{path}[{i}]"))?;
                }
            }
        }
        Value::String(s) => bound(
            rules,
            "minLength",
            "maxLength",
            s.chars().count(),
            path,
            "characters",
        )?,
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = rules.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                return Err(format!("{path} must be at least {min}"));
            }
            if let Some(max) = rules.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                return Err(format!("{path} must be at most {max}"));
            }
        }
        _ => {}
    }
    Ok(())
}

fn validate_object(
    rules: &Map<String, Value>,
    fields: &Map<String, Value>,
    path: &str,
) -> Result<(), String> {
    let properties = rules.get("properties").and_then(Value::as_object);
    for name in rules
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(name) {
            return Err(format!("{path}.{name} is required"));
        }
    }
    let closed = rules.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, field) in fields {
        match properties.and_then(|p| p.get(name)) {
            Some(sub) => validate_at(sub, field, &format!("{path}.{name}"))?,
            None if closed => return Err(format!("{path}.{name} is not an accepted argument")),
            None => {}
        }
    }
    Ok(())
}

fn bound(
    rules: &Map<String, Value>,
    min_key: &str,
    max_key: &str,
    len: usize,
    path: &str,
    unit: &str,
) -> Result<(), String> {
    if let Some(min) = rules.get(min_key).and_then(Value::as_u64)
        && (len as u64) < min
    {
        return Err(format!("{path} must have at least {min} {unit}"));
    }
    if let Some(max) = rules.get(max_key).and_then(Value::as_u64)
        && (len as u64) > max
    {
        return Err(format!("{path} must have at most {max} {unit}"));
    }
    Ok(())
}

fn type_matches(types: &Value, value: &Value) -> bool {
    let one = |t: &Value| match t.as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("number") => value.is_number(),
        // 3.0 is an integer to JSON Schema.
        Some("integer") => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        Some("boolean") => value.is_boolean(),
        Some("null") => value.is_null(),
        _ => false,
    };
    match types {
        Value::Array(list) => list.iter().any(one),
        t => one(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order_schema() -> Value {
        json!({
            "type": "object",
            "description": "Look up an order",
            "properties": {
                "order_id": {"type": "string", "minLength": 3, "maxLength": 12},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
                "speed": {"type": "string", "enum": ["standard", "express"]},
                "items": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "note": {"type": ["string", "null"]}
            },
            "required": ["order_id"],
            "additionalProperties": false
        })
    }

    #[test]
    fn accepts_the_subset_and_refuses_what_it_cannot_enforce() {
        assert_eq!(check_schema(&order_schema()), Ok(()));
        let err = check_schema(&json!({"type": "string"})).unwrap_err();
        assert!(err.contains("\"type\": \"object\""), "{err}");
        let err = check_schema(&json!({"type": "object", "properties": {"a": {"pattern": "x"}}}))
            .unwrap_err();
        assert!(
            err.contains("/properties/a") && err.contains("pattern"),
            "{err}"
        );
        let err = check_schema(&json!({"type": "object", "required": "a"})).unwrap_err();
        assert!(err.contains("/required"), "{err}");
        let err = check_schema(
            &json!({"type": "object", "properties": {"a": {"type": ["string", "text"]}}}),
        )
        .unwrap_err();
        assert!(err.contains("not a JSON type"), "{err}");
        let mut deep = json!({"type": "string"});
        for _ in 0..10 {
            deep = json!({"type": "object", "properties": {"x": deep}});
        }
        assert!(check_schema(&deep).unwrap_err().contains("deeper"));
    }

    #[test]
    fn validates_arguments_and_says_what_to_fix() {
        let schema = order_schema();
        let ok = json!({"order_id": "A1234", "quantity": 2, "speed": "express",
                        "items": ["x"], "note": null});
        assert_eq!(validate(&schema, &ok), Ok(()));
        assert_eq!(
            validate(&schema, &json!({"order_id": "A12", "quantity": 3.0})),
            Ok(())
        );
        let cases = [
            (json!({}), "arguments.order_id is required"),
            (
                json!({"order_id": 7}),
                "arguments.order_id must be of type \"string\"",
            ),
            (json!({"order_id": "A1"}), "at least 3 characters"),
            (json!({"order_id": "A123", "quantity": 11}), "at most 10"),
            (
                json!({"order_id": "A123", "quantity": 1.5}),
                "type \"integer\"",
            ),
            (
                json!({"order_id": "A123", "speed": "slow"}),
                "must be one of",
            ),
            (
                json!({"order_id": "A123", "items": ["a", "b", "c"]}),
                "at most 2 items",
            ),
            (
                json!({"order_id": "A123", "items": [1]}),
                "arguments.items[0]",
            ),
            (
                json!({"order_id": "A123", "extra": 1}),
                "arguments.extra is not an accepted",
            ),
            (json!("A123"), "must be of type \"object\""),
        ];
        for (args, expected) in cases {
            let err = validate(&schema, &args).unwrap_err();
            assert!(err.contains(expected), "{args}: {err}");
        }
    }
}
