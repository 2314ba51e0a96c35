//! The Git LFS batch API (download and upload operations).
//!
//! Spec: git-lfs `docs/api/batch.md`. wvs-auth keeps objects in the git-lfs standalone
//! layout inside the bare repository ([`super::repo::Repositories::lfs_object`]) with the
//! `basic` transfer adapter: each found object of a download gets a download action pointing
//! back at wvs-auth with a short-lived signed header ([`super::link`]); unknown oids get a
//! per-object 404 in an otherwise successful answer, as the spec asks. An upload gets an
//! upload action (a PUT to the same object URL, [`super::upload`]) for each object the
//! server lacks, and no action for one it already has, which tells git-lfs to skip it.

use serde::{Deserialize, Serialize};

use super::route::Oid;

/// Media type of every batch request and answer, error answers included.
pub const MEDIA_TYPE: &str = "application/vnd.git-lfs+json";
/// git-lfs sends at most 100 objects per batch request by default; a few times that is
/// plenty and bounds the signatures one request can cost.
pub const MAX_OBJECTS: usize = 1000;
/// Distinct objects an anonymous batch may ask for (git-lfs sends 100 per batch): bounds
/// the signing work a client without credentials can cause.
pub const MAX_ANONYMOUS_OBJECTS: usize = 100;

#[derive(Debug, Deserialize)]
pub struct BatchRequest {
    pub operation: String,
    #[serde(default)]
    pub transfers: Option<Vec<String>>,
    pub objects: Vec<RequestObject>,
    #[serde(default)]
    pub hash_algo: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RequestObject {
    pub oid: String,
    pub size: i64,
}

#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub transfer: &'static str,
    pub objects: Vec<ResponseObject>,
    pub hash_algo: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ResponseObject {
    pub oid: String,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Actions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ObjectError>,
}

#[derive(Debug, Serialize)]
pub struct Actions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<Action>,
}

#[derive(Debug, Serialize)]
pub struct Action {
    pub href: String,
    pub header: std::collections::BTreeMap<String, String>,
    pub expires_in: i64,
}

#[derive(Debug, Serialize)]
pub struct ObjectError {
    pub code: u16,
    pub message: String,
}

/// Why a batch request is refused as a whole (422 in the spec's terms, 409 for the hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch request is not valid JSON of the batch API: {0}")]
    Malformed(String),
    #[error("operation must be \"download\" or \"upload\"")]
    UnknownOperation,
    #[error("only the sha256 hash algorithm is supported")]
    HashAlgo,
    #[error("only the basic transfer adapter is supported")]
    Transfer,
    #[error("at most {MAX_OBJECTS} objects per batch request")]
    TooManyObjects,
}

/// The operation asked for, once the request is known to be well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Download,
    Upload,
}

/// Parses and checks a batch request body.
pub fn parse_batch(body: &[u8]) -> Result<(Operation, Vec<RequestObject>), BatchError> {
    let req: BatchRequest =
        serde_json::from_slice(body).map_err(|e| BatchError::Malformed(e.to_string()))?;
    let op = match req.operation.as_str() {
        "download" => Operation::Download,
        "upload" => Operation::Upload,
        _ => return Err(BatchError::UnknownOperation),
    };
    if req.hash_algo.as_deref().is_some_and(|h| h != "sha256") {
        return Err(BatchError::HashAlgo);
    }
    if req
        .transfers
        .as_ref()
        .is_some_and(|t| !t.is_empty() && !t.iter().any(|t| t == "basic"))
    {
        return Err(BatchError::Transfer);
    }
    // Every distinct object is answered (and its link signed) once, however often it is
    // listed: 730 copies of one oid must not cost 730 signatures.
    let mut seen = std::collections::HashSet::new();
    let objects: Vec<RequestObject> = req
        .objects
        .into_iter()
        .filter(|o| seen.insert(o.oid.clone()))
        .collect();
    if objects.len() > MAX_OBJECTS {
        return Err(BatchError::TooManyObjects);
    }
    Ok((op, objects))
}

/// What the store says about one requested object.
pub enum Lookup {
    /// Download: present, with its real size and a signed download header value.
    Found {
        size: i64,
        href: String,
        auth: String,
    },
    /// Download: not there.
    Missing,
    /// Upload: already stored with this size, nothing to send.
    Present,
    /// Upload: send it to `href` with this signed header value.
    Upload { href: String, auth: String },
    /// Upload: larger than [`super::upload::MAX_OBJECT_BYTES`].
    TooLarge,
}

/// The per-object answer: an action, none (upload of a present object), or the spec's
/// per-object error.
pub fn answer_object(requested: RequestObject, lookup: Option<Lookup>) -> ResponseObject {
    let error = |code, message: &str| ResponseObject {
        oid: requested.oid.clone(),
        size: requested.size,
        authenticated: None,
        actions: None,
        error: Some(ObjectError {
            code,
            message: message.into(),
        }),
    };
    match lookup {
        // The oid is not a sha256 hex string, or the size is negative.
        None => error(422, "invalid object id or size"),
        Some(Lookup::Missing) => error(404, "object does not exist"),
        Some(Lookup::TooLarge) => error(
            422,
            &format!(
                "objects are limited to {} bytes",
                super::upload::MAX_OBJECT_BYTES
            ),
        ),
        Some(Lookup::Found { size, href, auth }) => ResponseObject {
            oid: requested.oid.clone(),
            size,
            authenticated: Some(true),
            actions: Some(Actions {
                download: Some(action(href, auth)),
                upload: None,
            }),
            error: None,
        },
        Some(Lookup::Present) => ResponseObject {
            oid: requested.oid.clone(),
            size: requested.size,
            authenticated: Some(true),
            actions: None,
            error: None,
        },
        Some(Lookup::Upload { href, auth }) => ResponseObject {
            oid: requested.oid.clone(),
            size: requested.size,
            authenticated: Some(true),
            actions: Some(Actions {
                download: None,
                upload: Some(action(href, auth)),
            }),
            error: None,
        },
    }
}

fn action(href: String, auth: String) -> Action {
    Action {
        href,
        header: [("Authorization".to_string(), auth)].into(),
        expires_in: super::link::LINK_TTL_SECS,
    }
}

/// A requested object's oid, if it is well formed (and its size not negative).
pub fn requested_oid(o: &RequestObject) -> Option<Oid> {
    if o.size < 0 {
        return None;
    }
    Oid::parse(&o.oid)
}

/// Does an `Accept` header admit the LFS media type? A missing header admits anything.
pub fn accepts_lfs(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    accept.split(',').any(|item| {
        let media = item.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case(MEDIA_TYPE)
            || media.eq_ignore_ascii_case("application/json")
            || media == "*/*"
            || media.eq_ignore_ascii_case("application/*")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn parses_download_batches_and_refuses_bad_ones() {
        let body = format!(
            r#"{{"operation":"download","transfers":["lfs-standalone-file","basic"],"ref":{{"name":"refs/heads/main"}},"objects":[{{"oid":"{OID}","size":12}}],"hash_algo":"sha256"}}"#
        );
        let (op, objects) = parse_batch(body.as_bytes()).expect("valid");
        assert_eq!(op, Operation::Download);
        assert_eq!(objects.len(), 1);
        let (op, _) = parse_batch(br#"{"operation":"upload","objects":[]}"#).expect("valid");
        assert_eq!(op, Operation::Upload);

        assert!(matches!(parse_batch(b"{"), Err(BatchError::Malformed(_))));
        assert_eq!(
            parse_batch(br#"{"operation":"delete","objects":[]}"#).err(),
            Some(BatchError::UnknownOperation)
        );
        assert_eq!(
            parse_batch(br#"{"operation":"download","objects":[],"hash_algo":"sha512"}"#).err(),
            Some(BatchError::HashAlgo)
        );
        assert_eq!(
            parse_batch(br#"{"operation":"download","objects":[],"transfers":["tus"]}"#).err(),
            Some(BatchError::Transfer)
        );
        let batch_of = |oids: Vec<String>| {
            let objects: Vec<String> = oids
                .iter()
                .map(|oid| format!(r#"{{"oid":"{oid}","size":1}}"#))
                .collect();
            format!(
                r#"{{"operation":"download","objects":[{}]}}"#,
                objects.join(",")
            )
        };
        let distinct = (0..=MAX_OBJECTS).map(|i| format!("{i:064x}")).collect();
        assert_eq!(
            parse_batch(batch_of(distinct).as_bytes()).err(),
            Some(BatchError::TooManyObjects)
        );
        // Copies of one object are one object: answered once, and not over the limit.
        let copies = vec![OID.to_string(); MAX_OBJECTS + 1];
        let parsed = parse_batch(batch_of(copies).as_bytes()).expect("copies parse");
        assert_eq!(parsed.1.len(), 1);
    }

    #[test]
    fn per_object_answers() {
        let req = |oid: &str, size| RequestObject {
            oid: oid.into(),
            size,
        };
        let found = answer_object(
            req(OID, 12),
            Some(Lookup::Found {
                size: 12,
                href: "http://h/x".into(),
                auth: "RemoteAuth t".into(),
            }),
        );
        let v = serde_json::to_value(&found).expect("json");
        assert_eq!(v["actions"]["download"]["href"], "http://h/x");
        assert_eq!(
            v["actions"]["download"]["header"]["Authorization"],
            "RemoteAuth t"
        );
        assert!(v.get("error").is_none());
        assert!(v["actions"].get("upload").is_none());

        let upload = serde_json::to_value(answer_object(
            req(OID, 12),
            Some(Lookup::Upload {
                href: "http://h/x".into(),
                auth: "RemoteAuth u".into(),
            }),
        ))
        .expect("json");
        assert_eq!(upload["actions"]["upload"]["href"], "http://h/x");
        assert!(upload["actions"].get("download").is_none());
        let present =
            serde_json::to_value(answer_object(req(OID, 12), Some(Lookup::Present))).expect("json");
        assert!(present.get("actions").is_none() && present.get("error").is_none());
        assert_eq!(present["size"], 12);

        let missing =
            serde_json::to_value(answer_object(req(OID, 12), Some(Lookup::Missing))).expect("json");
        assert_eq!(missing["error"]["code"], 404);
        assert!(missing.get("actions").is_none());

        assert!(requested_oid(&req("xyz", 1)).is_none());
        assert!(requested_oid(&req(OID, -1)).is_none());
        let invalid = serde_json::to_value(answer_object(req("xyz", 1), None)).expect("json");
        assert_eq!(invalid["error"]["code"], 422);
    }

    #[test]
    fn accept_header() {
        assert!(accepts_lfs(None));
        assert!(accepts_lfs(Some("application/vnd.git-lfs+json")));
        assert!(accepts_lfs(Some(
            "text/html, application/vnd.git-lfs+json; charset=utf-8"
        )));
        assert!(accepts_lfs(Some("*/*")));
        assert!(!accepts_lfs(Some("text/html")));
    }
}
