use serde_json::Value;

/// The claims of a token that the audit record uses. Read tolerantly: a claim of the wrong
/// type is ignored, never an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenClaims {
    /// `sub`.
    pub subject: Option<String>,
    /// `client_id`, else `azp`, else `cid`.
    pub client_id: Option<String>,
    /// `scope` (space-separated), else `scp` (array or string).
    pub scopes: Vec<String>,
    /// `jti`.
    pub jti: Option<String>,
    /// `iss`.
    pub issuer: Option<String>,
    /// `aud` (string or array).
    pub audience: Vec<String>,
    /// `iat`, seconds since the epoch.
    pub issued_at: Option<i64>,
    /// `exp`, seconds since the epoch.
    pub expires_at: Option<i64>,
    /// `nbf`, seconds since the epoch.
    pub not_before: Option<i64>,
    /// `act.sub`: the acting party of a delegated token (RFC 8693).
    pub actor: Option<String>,
}

impl TokenClaims {
    /// Reads the claims of a JWT payload or an introspection response.
    ///
    /// ```
    /// let claims = oauth_audit::token::TokenClaims::from_json(&serde_json::json!({
    ///     "sub": "alice", "azp": "web", "scp": ["a", "b"], "aud": "api", "exp": 10
    /// }));
    /// assert_eq!(claims.client_id.as_deref(), Some("web"));
    /// assert_eq!(claims.scopes, ["a", "b"]);
    /// assert_eq!(claims.audience, ["api"]);
    /// ```
    pub fn from_json(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let int = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        };
        let scopes = match (value.get("scope"), value.get("scp")) {
            (Some(Value::String(s)), _) => split_scopes(s),
            (_, Some(Value::String(s))) => split_scopes(s),
            (_, Some(Value::Array(items))) => strings(items),
            _ => Vec::new(),
        };
        let audience = match value.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => strings(items),
            _ => Vec::new(),
        };
        TokenClaims {
            subject: text("sub"),
            client_id: text("client_id")
                .or_else(|| text("azp"))
                .or_else(|| text("cid")),
            scopes,
            jti: text("jti"),
            issuer: text("iss"),
            audience,
            issued_at: int("iat"),
            expires_at: int("exp"),
            not_before: int("nbf"),
            actor: value
                .get("act")
                .and_then(|act| act.get("sub"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn strings(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerant_reading() {
        let c = TokenClaims::from_json(&json!({
            "sub": 7, "client_id": "c", "azp": "ignored", "scope": " a  b ",
            "aud": ["x", 3, "y"], "iat": 1.5e9, "exp": "soon", "act": {"sub": "svc"}
        }));
        assert_eq!(c.subject, None);
        assert_eq!(c.client_id.as_deref(), Some("c"));
        assert_eq!(c.scopes, ["a", "b"]);
        assert_eq!(c.audience, ["x", "y"]);
        assert_eq!(c.issued_at, Some(1_500_000_000));
        assert_eq!(c.expires_at, None);
        assert_eq!(c.actor.as_deref(), Some("svc"));
        assert_eq!(
            TokenClaims::from_json(&json!({"cid": "okta"}))
                .client_id
                .as_deref(),
            Some("okta")
        );
        assert_eq!(
            TokenClaims::from_json(&json!([1, 2])),
            TokenClaims::default()
        );
    }
}
