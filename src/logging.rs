//! The process's logger: env_logger's text lines (the default) or one JSON object per line
//! (`--log-format json`), for shippers such as Loki, Elasticsearch or CloudWatch that index
//! fields rather than parse text.
//!
//! Access-log lines (one per token request, one per git request) are built as an
//! [`AccessLine`] of typed fields, so both formats carry the same fields: the text form is
//! today's `token ip=… user="…" … latency_us=…`; the JSON form has the same keys with
//! numbers as numbers and scope lists as arrays. The JSON fields travel to the formatter as
//! the record's one key-value ([`FIELDS_KEY`]) — not spliced from the message — so nothing
//! else logged can produce a malformed line.

use std::io::Write;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The target of every access-log line, whichever surface wrote it, so `RUST_LOG` can
/// select or silence them alone (`RUST_LOG=info,wvs_auth::access=off`).
pub const ACCESS_TARGET: &str = "wvs_auth::access";

/// The key-value under which an access line hands its JSON fields to the formatter.
const FIELDS_KEY: &str = "wvs_access_fields";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// env_logger's `[time LEVEL target] message` lines.
    #[default]
    Text,
    /// One JSON object per line: `time`, `level`, `target`, then `message` or, for access
    /// lines, `event` and the line's fields.
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the logger once, with `RUST_LOG` over `default_filter`. Later calls (tests that
/// start several servers in one process) keep the first logger.
pub fn init(format: LogFormat, default_filter: &str) {
    let _ = FORMAT.set(format);
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter));
    if format == LogFormat::Json {
        builder.format(|buf, record| writeln!(buf, "{}", json_line(record)));
    }
    let _ = builder.try_init();
}

fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// One log record as a JSON object (no newline).
fn json_line(record: &log::Record<'_>) -> String {
    let mut object = serde_json::Map::new();
    object.insert(
        "time".into(),
        chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .into(),
    );
    object.insert("level".into(), record.level().as_str().into());
    object.insert("target".into(), record.target().into());
    let fields = record
        .key_values()
        .get(log::kv::Key::from_str(FIELDS_KEY))
        .and_then(|v| v.to_borrowed_str().map(str::to_owned));
    // The fields are an object `AccessLine::json_fields` serialised: its members join the
    // head's as they are, without being parsed again.
    let members = fields
        .as_deref()
        .and_then(|text| text.strip_prefix('{'))
        .filter(|rest| rest.len() > 1 && rest.ends_with('}'));
    match members {
        Some(members) => {
            let mut line = serde_json::Value::Object(object).to_string();
            line.pop();
            line.push(',');
            line.push_str(members);
            line
        }
        None => {
            object.insert("message".into(), record.args().to_string().into());
            serde_json::Value::Object(object).to_string()
        }
    }
}

/// A field's value, typed so JSON keeps numbers and lists while the text form stays as it
/// always was (`user="x"`, `asked=["a"]`, `status=200`).
enum Value {
    /// Written bare in text: addresses, paths, names from a closed set.
    Bare(String),
    /// Quoted (Rust's `Debug`) in text: anything a client chose, so spaces and `=` cannot
    /// forge another field.
    Quoted(String),
    List(Vec<String>),
    Number(u64),
}

/// One access-log line: an event name and its fields in order.
pub struct AccessLine {
    event: &'static str,
    fields: Vec<(&'static str, Value)>,
}

impl AccessLine {
    pub fn new(event: &'static str) -> Self {
        Self {
            event,
            fields: Vec::with_capacity(8),
        }
    }

    pub fn bare(mut self, key: &'static str, value: impl std::fmt::Display) -> Self {
        self.fields.push((key, Value::Bare(value.to_string())));
        self
    }

    pub fn quoted(mut self, key: &'static str, value: &str) -> Self {
        self.fields.push((key, Value::Quoted(value.to_string())));
        self
    }

    pub fn list(mut self, key: &'static str, values: Vec<String>) -> Self {
        self.fields.push((key, Value::List(values)));
        self
    }

    pub fn number(mut self, key: &'static str, value: u64) -> Self {
        self.fields.push((key, Value::Number(value)));
        self
    }

    /// Writes the line at `info` in the configured format.
    pub fn emit(self) {
        if !log::log_enabled!(target: ACCESS_TARGET, log::Level::Info) {
            return;
        }
        match format() {
            LogFormat::Text => log::info!(target: ACCESS_TARGET, "{}", self.text()),
            LogFormat::Json => {
                let fields = self.json_fields();
                log::info!(target: ACCESS_TARGET, wvs_access_fields = fields.as_str(); "{}", self.event);
            }
        }
    }

    /// `event key=value …`, the text access log.
    fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut line = self.event.to_string();
        for (key, value) in &self.fields {
            let _ = match value {
                Value::Bare(v) => write!(line, " {key}={v}"),
                Value::Quoted(v) => write!(line, " {key}={v:?}"),
                Value::List(v) => write!(line, " {key}={v:?}"),
                Value::Number(v) => write!(line, " {key}={v}"),
            };
        }
        line
    }

    /// `{"event":…, key: value, …}` as JSON text.
    fn json_fields(&self) -> String {
        let mut object = serde_json::Map::new();
        object.insert("event".into(), self.event.into());
        for (key, value) in &self.fields {
            let value = match value {
                Value::Bare(v) | Value::Quoted(v) => serde_json::Value::from(v.as_str()),
                Value::List(v) => serde_json::Value::from(v.clone()),
                Value::Number(v) => serde_json::Value::from(*v),
            };
            object.insert((*key).into(), value);
        }
        serde_json::Value::Object(object).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AccessLine {
        AccessLine::new("token")
            .bare("ip", "127.0.0.1")
            .quoted("user", "ci \"x\" user=admin")
            .list("asked", vec!["repository:a/b:pull".into()])
            .number("status", 200)
    }

    #[test]
    fn text_form_quotes_what_clients_chose() {
        assert_eq!(
            sample().text(),
            r#"token ip=127.0.0.1 user="ci \"x\" user=admin" asked=["repository:a/b:pull"] status=200"#
        );
    }

    #[test]
    fn json_form_has_the_same_fields_typed() {
        let v: serde_json::Value = serde_json::from_str(&sample().json_fields()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "event": "token",
                "ip": "127.0.0.1",
                "user": "ci \"x\" user=admin",
                "asked": ["repository:a/b:pull"],
                "status": 200,
            })
        );
    }

    #[test]
    fn json_records_are_one_object_whatever_the_message() {
        let fields = sample().json_fields();
        let kvs = [(FIELDS_KEY, fields.as_str())];
        let access = log::Record::builder()
            .target(ACCESS_TARGET)
            .level(log::Level::Info)
            .args(format_args!("token"))
            .key_values(&kvs)
            .build();
        let line: serde_json::Value = serde_json::from_str(&json_line(&access)).expect("json");
        assert_eq!(line["event"], "token");
        assert_eq!(line["status"], 200);
        assert_eq!(line["level"], "INFO");
        assert!(line.get("message").is_none());

        let plain = log::Record::builder()
            .target("wvs_auth::x")
            .level(log::Level::Warn)
            .args(format_args!("a \"quoted\"\nline"))
            .build();
        let text = json_line(&plain);
        assert!(!text.contains('\n'));
        let line: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(line["message"], "a \"quoted\"\nline");
        assert_eq!(line["target"], "wvs_auth::x");
    }
}
