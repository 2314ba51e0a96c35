//! What each page shows, as askama templates (compiled in, HTML-escaped by default), and
//! the conversions from domain values to display strings.

use askama::Template;
use chrono::{DateTime, Utc};

use crate::domain::deploy_token::{DeployToken, TokenOwner, TokenScope};

/// What the frame around every page needs: who is signed in and the CSRF token for the
/// sign-out form.
#[derive(Default)]
pub struct Chrome {
    pub user: Option<String>,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "web/sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub return_to: String,
    pub username: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/index.html")]
pub struct IndexPage {
    pub chrome: Chrome,
    pub projects: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "web/deploy_tokens.html")]
pub struct DeployTokensPage {
    pub chrome: Chrome,
    pub owner: OwnerView,
    pub created: Vec<CreatedView>,
    pub revoked: Vec<String>,
    /// The create form, for those who may create tokens here.
    pub form: Option<CreateForm>,
    pub tokens: Vec<TokenRow>,
}

#[derive(Template)]
#[template(path = "web/revoke.html")]
pub struct RevokePage {
    pub chrome: Chrome,
    pub owner: OwnerView,
    pub token: TokenRow,
}

#[derive(Template)]
#[template(path = "web/packages.html")]
pub struct PackagesPage {
    pub chrome: Chrome,
    pub project: String,
    pub tokens_url: String,
    pub deleted: Vec<String>,
    pub packages: Vec<PackageRow>,
}

#[derive(Template)]
#[template(path = "web/delete_package.html")]
pub struct DeletePackagePage {
    pub chrome: Chrome,
    pub project: String,
    pub page_url: String,
    pub package: PackageRow,
}

/// One package version as the Packages page lists it.
pub struct PackageRow {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub format: &'static str,
    pub files: usize,
    pub size: String,
    pub created: String,
    /// The confirmation page, for those who may delete.
    pub delete_url: Option<String>,
}

impl PackageRow {
    pub fn of(
        package: &crate::domain::package::Package,
        files: &[crate::domain::package::PackageFile],
        page_url: &str,
        may_delete: bool,
    ) -> Self {
        Self {
            id: package.id,
            name: package.name.clone(),
            version: package.version.clone(),
            format: package.format.as_str(),
            files: files.len(),
            size: human_size(files.iter().map(|f| f.size).sum()),
            created: moment(package.created_at),
            delete_url: may_delete.then(|| format!("{page_url}/{}/delete", package.id)),
        }
    }
}

/// An instant as the pages show it.
fn moment(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `1.5 MiB`, for people.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The Packages page of a project.
pub fn packages_url(project: &str) -> String {
    format!("/-/projects/{project}/packages")
}

/// The project or group a page is about.
pub struct OwnerView {
    pub kind_label: &'static str,
    pub is_group: bool,
    pub path: String,
    /// `/-/projects/PATH/settings/deploy_tokens` or the group form.
    pub page_url: String,
}

impl OwnerView {
    pub fn of(owner: &TokenOwner) -> Self {
        let is_group = matches!(owner, TokenOwner::Group { .. });
        let path = owner.path().to_string();
        Self {
            kind_label: if is_group { "Group" } else { "Project" },
            is_group,
            page_url: page_url(owner),
            path,
        }
    }
}

/// The deploy-token page of `owner`; paths are `[a-z0-9._-/]`, safe in a URL as they are.
pub fn page_url(owner: &TokenOwner) -> String {
    let kind = match owner {
        TokenOwner::Project { .. } => "projects",
        TokenOwner::Group { .. } => "groups",
    };
    format!("/-/{kind}/{}/settings/deploy_tokens", owner.path())
}

/// A token just created, with the secret this one page shows.
pub struct CreatedView {
    pub name: String,
    pub username: String,
    pub secret: String,
}

/// One line of the token table.
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub username: String,
    pub scopes: String,
    pub expires: String,
    pub last_used: String,
    /// `active`, `revoked` or `expired` (also the CSS class suffix).
    pub status: &'static str,
    pub status_text: String,
    pub revoke_url: Option<String>,
}

impl TokenRow {
    /// `may_revoke` only decides whether the link is shown; revoking checks again.
    pub fn of(token: &DeployToken, now: DateTime<Utc>, may_revoke: bool) -> Self {
        let (status, status_text) = if let Some(at) = token.revoked_at {
            (
                "revoked",
                format!("Revoked {}", at.format("%Y-%m-%d %H:%M UTC")),
            )
        } else if token.is_expired(now) {
            ("expired", "Expired".to_string())
        } else {
            ("active", "Active".to_string())
        };
        let revoke_url = (may_revoke && token.revoked_at.is_none())
            .then(|| format!("{}/{}/revoke", page_url(&token.owner), token.id));
        Self {
            id: token.id,
            name: token.name.clone(),
            username: token.username(),
            scopes: token
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            expires: token
                .expires_at
                .map_or_else(|| "Never".to_string(), |d| d.to_string()),
            last_used: token.last_used_at.map_or_else(
                || "Never".to_string(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
            status,
            status_text,
            revoke_url,
        }
    }
}

/// The create form as last submitted (kept on errors), with errors next to their fields.
#[derive(Default)]
pub struct CreateForm {
    pub name: String,
    pub expires_at: String,
    pub username: String,
    pub scopes: Vec<ScopeBox>,
    pub field_errors: Vec<(String, String)>,
    /// Errors that belong to no field of the form.
    pub general: Vec<String>,
}

pub struct ScopeBox {
    pub value: &'static str,
    pub help: &'static str,
    pub checked: bool,
}

/// The fields the form shows errors next to; anything else is a general error.
const FORM_FIELDS: [&str; 4] = ["name", "expires_at", "username", "scopes"];

impl CreateForm {
    pub fn new(checked: &[String]) -> Self {
        Self {
            scopes: TokenScope::ALL
                .into_iter()
                .map(|s| ScopeBox {
                    value: s.as_str(),
                    help: scope_help(s),
                    checked: checked.iter().any(|c| c == s.as_str()),
                })
                .collect(),
            ..Self::default()
        }
    }

    pub fn add_error(&mut self, field: &str, message: String) {
        if FORM_FIELDS.contains(&field) {
            // The manager words some errors for the API ("is missing"); name the field here.
            let message = if message.starts_with("is ") {
                format!("{} {message}", field_label(field))
            } else {
                message
            };
            self.field_errors.push((field.to_string(), message));
        } else {
            self.general.push(message);
        }
    }

    /// The first error for `field`, for the template.
    pub fn error(&self, field: &str) -> Option<&str> {
        self.field_errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

fn field_label(field: &str) -> &'static str {
    match field {
        "name" => "Name",
        "expires_at" => "Expiration date",
        "username" => "Username",
        _ => "Scopes",
    }
}

fn scope_help(scope: TokenScope) -> &'static str {
    match scope {
        TokenScope::ReadRepository => "clone and fetch over git (and LFS downloads)",
        TokenScope::ReadRegistry => "pull container images",
        TokenScope::WriteRegistry => "push container images",
        TokenScope::ReadPackageRegistry => "download packages",
        TokenScope::WritePackageRegistry => "publish and delete packages",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_go_next_to_their_field_and_others_on_top() {
        let mut form = CreateForm::new(&["read_registry".to_string()]);
        form.add_error("name", "is missing".into());
        form.add_error("owner", "gone".into());
        assert_eq!(form.error("name"), Some("Name is missing"));
        assert_eq!(form.error("scopes"), None);
        assert_eq!(form.general, vec!["gone".to_string()]);
        assert!(form
            .scopes
            .iter()
            .any(|s| s.value == "read_registry" && s.checked));
        assert!(form
            .scopes
            .iter()
            .any(|s| s.value == "write_registry" && !s.checked));
    }

    #[test]
    fn pages_escape_what_users_typed() {
        let page = SignInPage {
            chrome: Chrome::default(),
            csrf: "c".into(),
            return_to: "/-/".into(),
            username: "<script>alert(1)</script>".into(),
            error: None,
        };
        let html = page.render().expect("render");
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
        assert!(html.contains(r#"name="viewport""#));
    }
}
