//! Packages as the rules see them: formats, names, versions, files and their digests, and
//! who may read, publish and delete them (SPEC §2 "Packages", §6).
//!
//! Names, versions and file names are validated here, strictly, before anything touches the
//! disk or the database: each is one path segment of a safe alphabet, so a traversal
//! (`..`, `%2e%2e`, `%2f`, an absolute path, NUL) can never reach the blob store.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::deploy_token::TokenScope;
use super::namespace::{Project, Visibility};
use super::principal::Principal;
use super::role::Role;
use super::user::UserCredential;

pub mod maven;
pub mod nuget;

/// The package formats wvs-auth serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageFormat {
    Generic,
    Pypi,
    Npm,
    Cargo,
    Maven,
    Nuget,
}

impl PackageFormat {
    pub const ALL: [PackageFormat; 6] = [
        PackageFormat::Generic,
        PackageFormat::Pypi,
        PackageFormat::Npm,
        PackageFormat::Cargo,
        PackageFormat::Maven,
        PackageFormat::Nuget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PackageFormat::Generic => "generic",
            PackageFormat::Pypi => "pypi",
            PackageFormat::Npm => "npm",
            PackageFormat::Cargo => "cargo",
            PackageFormat::Maven => "maven",
            PackageFormat::Nuget => "nuget",
        }
    }

    /// The canonical form of a name, the one lookups and uniqueness use: PEP 503 for PyPI
    /// (`My_Pkg.x` and `my-pkg-x` are one project), Cargo's rule for crates (`Foo_bar` and
    /// `foo-bar` are one crate), NuGet ids lower-cased, the name itself elsewhere.
    pub fn normalize(self, name: &str) -> String {
        match self {
            PackageFormat::Pypi => pep503_normalize(name),
            PackageFormat::Cargo => cargo_normalize(name),
            PackageFormat::Nuget => nuget::lower_id(name),
            PackageFormat::Generic | PackageFormat::Npm | PackageFormat::Maven => name.to_string(),
        }
    }
}

impl FromStr for PackageFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PackageFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown package format {s:?}"))
    }
}

impl fmt::Display for PackageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The digests kept for every file, as lower-case hex: SHA-256 names the blob; the others
/// are what formats serve (npm's `shasum` is SHA-1 and its `integrity` SHA-512, Maven's
/// checksum files, PyPI's `md5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub sha256: String,
    pub sha1: String,
    pub md5: String,
    pub sha512: String,
}

/// One stored package version (its files apart).
#[derive(Debug, Clone)]
pub struct Package {
    pub id: i64,
    pub project_id: i64,
    pub format: PackageFormat,
    pub name: String,
    pub normalized_name: String,
    pub version: String,
    /// Format-specific JSON: npm's version manifest, PyPI's `requires_python` and summary.
    pub metadata: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
}

/// One file of a package version.
#[derive(Debug, Clone)]
pub struct PackageFile {
    pub id: i64,
    pub package_id: i64,
    pub file_name: String,
    pub size: i64,
    pub digests: Digests,
    pub created_at: DateTime<Utc>,
    pub uploaded_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageInputError {
    #[error("package name {0:?} is invalid")]
    Name(String),
    #[error("package version {0:?} is invalid")]
    Version(String),
    #[error("file name {0:?} is invalid")]
    FileName(String),
}

/// A single segment of at most 255 bytes from `allowed`, not `.` or `..`, starting with an
/// alphanumeric character: what every name, version and file name must be.
fn safe_segment(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || allowed(*c))
        && !s.contains("..")
}

/// Generic package names: GitLab's `[A-Za-z0-9._-]`, plus `+` and `~` in versions and files.
pub fn validate_generic(name: &str, version: &str, file: &str) -> Result<(), PackageInputError> {
    if !safe_segment(name, |c| matches!(c, b'.' | b'_' | b'-')) {
        return Err(PackageInputError::Name(name.into()));
    }
    validate_version(version)?;
    validate_file_name(file)
}

/// A version: one segment of `[A-Za-z0-9._+~-]` (semver, PEP 440 and GitLab's generic
/// versions all fit).
pub fn validate_version(version: &str) -> Result<(), PackageInputError> {
    if safe_segment(version, |c| {
        matches!(c, b'.' | b'_' | b'-' | b'+' | b'~' | b'!')
    }) {
        Ok(())
    } else {
        Err(PackageInputError::Version(version.into()))
    }
}

/// A file name: one segment of `[A-Za-z0-9._+~-]`.
pub fn validate_file_name(file: &str) -> Result<(), PackageInputError> {
    if safe_segment(file, |c| matches!(c, b'.' | b'_' | b'-' | b'+' | b'~')) {
        Ok(())
    } else {
        Err(PackageInputError::FileName(file.into()))
    }
}

/// A PyPI project name (PEP 508: letters, digits, `.`, `_`, `-`, starting and ending with
/// a letter or digit).
pub fn validate_pypi_name(name: &str) -> Result<(), PackageInputError> {
    let ok = safe_segment(name, |c| matches!(c, b'.' | b'_' | b'-'))
        && name
            .bytes()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(PackageInputError::Name(name.into()))
    }
}

/// PEP 503: runs of `-`, `_` and `.` become one `-`, and the name is lower-cased.
pub fn pep503_normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

/// A crate name as Cargo accepts one: ASCII letters, digits, `-` and `_`, starting with a
/// letter, at most 64 characters (Cargo's own `validate_package_name` and crates.io's limit).
pub fn validate_crate_name(name: &str) -> Result<(), PackageInputError> {
    let starts_well = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_well
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(PackageInputError::Name(name.into()));
    }
    Ok(())
}

/// Cargo treats names that differ only in case or in `-` against `_` as one crate.
pub fn cargo_normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// The path of a crate's file in a sparse index, relative to its root (the Cargo
/// reference, "Index files"): `1/a`, `2/ab`, `3/a/abc`, else `ab/cd/abcd…`, lower-case.
/// Only for names `validate_crate_name` accepts (ASCII, so byte slicing is safe).
pub fn crate_index_path(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.len() {
        0 => String::new(),
        1 => format!("1/{lower}"),
        2 => format!("2/{lower}"),
        3 => format!("3/{}/{lower}", &lower[..1]),
        _ => format!("{}/{}/{lower}", &lower[..2], &lower[2..4]),
    }
}

/// The crate an index path names, if the path is the one Cargo would ask for that name.
pub fn crate_of_index_path(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    validate_crate_name(name).ok()?;
    (crate_index_path(name) == path.to_ascii_lowercase()).then_some(name)
}

/// An npm package name: `name` or `@scope/name`, lower-case URL-safe characters (npm's own
/// rules: at most 214 characters, no leading `.` or `_`).
pub fn validate_npm_name(name: &str) -> Result<(), PackageInputError> {
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with(['.', '_'])
            && p.bytes().all(|c| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, b'-' | b'.' | b'_' | b'~')
            })
            && p != "."
            && p != ".."
    };
    let ok = name.len() <= 214
        && !name.contains("..")
        && match name.strip_prefix('@') {
            Some(scoped) => scoped
                .split_once('/')
                .is_some_and(|(scope, pkg)| part(scope) && part(pkg)),
            None => part(name),
        };
    if ok {
        Ok(())
    } else {
        Err(PackageInputError::Name(name.into()))
    }
}

/// The scope of an npm package name (`@acme/app` → `acme`), if it has one.
pub fn npm_scope(name: &str) -> Option<&str> {
    name.strip_prefix('@')?.split_once('/').map(|(s, _)| s)
}

/// What a package request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageOperation {
    Read,
    Publish,
    Delete,
}

/// The decision, by how the answer must look (PACKAGE-NOTES §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageAccess {
    Allowed,
    /// No credentials where some are needed: 401 with a Basic challenge.
    CredentialsRequired,
    /// Authenticated, but without the scope or role: 403.
    Forbidden,
    /// A project the caller cannot see (or none at all): 404, the same for both.
    NotFound,
}

/// May `principal` do `op` with the packages of `project`? Deploy tokens by their package
/// scopes on the projects they cover; users by role (reporter reads, developer publishes,
/// maintainer deletes), a PAT only with `api`; anyone reads a public project, any signed-in
/// user an internal one.
pub fn package_access(
    principal: &Principal,
    project: Option<&Project>,
    op: PackageOperation,
) -> PackageAccess {
    let Some(project) = project else {
        return match principal {
            Principal::Anonymous => PackageAccess::CredentialsRequired,
            _ => PackageAccess::NotFound,
        };
    };
    let open_read = op == PackageOperation::Read
        && match project.visibility {
            Visibility::Public => true,
            Visibility::Internal => matches!(principal, Principal::User(_)),
            Visibility::Private => false,
        };
    match principal {
        Principal::Anonymous if open_read => PackageAccess::Allowed,
        Principal::Anonymous => PackageAccess::CredentialsRequired,
        Principal::DeployToken(t) => {
            if !t.covers(project.id, &project.path) {
                return if open_read {
                    PackageAccess::Allowed
                } else {
                    PackageAccess::NotFound
                };
            }
            let needed = match op {
                PackageOperation::Read => TokenScope::ReadPackageRegistry,
                PackageOperation::Publish | PackageOperation::Delete => {
                    TokenScope::WritePackageRegistry
                }
            };
            if t.has(needed) || open_read {
                PackageAccess::Allowed
            } else {
                PackageAccess::Forbidden
            }
        }
        Principal::User(u) => {
            if let UserCredential::PersonalAccessToken { scopes, .. } = &u.credential {
                if !scopes.contains(&super::personal_access_token::PatScope::Api) {
                    return PackageAccess::Forbidden;
                }
            }
            let role = u.role_in_project(project);
            let needed = match op {
                PackageOperation::Read => Role::Reporter,
                PackageOperation::Publish => Role::Developer,
                PackageOperation::Delete => Role::Maintainer,
            };
            match role {
                Some(r) if r >= needed => PackageAccess::Allowed,
                _ if open_read => PackageAccess::Allowed,
                Some(_) => PackageAccess::Forbidden,
                None if project.visibility == Visibility::Private => PackageAccess::NotFound,
                None => PackageAccess::Forbidden,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy_token::TokenOwner;
    use crate::domain::fixtures::{path, project, token, user};
    use crate::domain::user::MembershipTarget;

    use PackageAccess::*;
    use PackageOperation::*;

    #[test]
    fn names_versions_and_files_are_single_safe_segments() {
        assert!(validate_generic("my-tool", "1.2.3", "tool-linux.tar.gz").is_ok());
        assert!(validate_generic("tool", "1.0.0+build.5", "a~b").is_ok());
        for bad in [
            "..", "../x", "a/b", "%2e%2e", "/etc", "a\0b", "", ".hidden", "a..b",
        ] {
            assert!(validate_generic("tool", "1.0", bad).is_err(), "{bad:?}");
            assert!(validate_generic(bad, "1.0", "f").is_err(), "{bad:?}");
            assert!(validate_generic("tool", bad, "f").is_err(), "{bad:?}");
        }
        assert!(validate_generic(&"a".repeat(256), "1", "f").is_err());
    }

    proptest::proptest! {
        /// Any input is answered; what passes is one segment that stays where it is put.
        #[test]
        fn validation_never_panics_and_accepts_only_segments(raw in "\\PC{0,64}") {
            for ok in [
                validate_generic(&raw, "1", "f").is_ok(),
                validate_version(&raw).is_ok(),
                validate_file_name(&raw).is_ok(),
                validate_pypi_name(&raw).is_ok(),
            ] {
                if ok {
                    proptest::prop_assert!(!raw.contains('/') && !raw.contains(".."));
                    proptest::prop_assert!(!raw.contains('\\') && !raw.contains('\0'));
                }
            }
            if validate_npm_name(&raw).is_ok() {
                proptest::prop_assert!(!raw.contains("..") && raw.matches('/').count() <= 1);
            }
            let normalized = pep503_normalize(&raw);
            proptest::prop_assert_eq!(pep503_normalize(&normalized), normalized);
        }
    }

    #[test]
    fn pep503() {
        assert_eq!(pep503_normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(pep503_normalize("FRIENDLY._-BARD"), "friendly-bard");
        assert_eq!(pep503_normalize("friendly.bard"), "friendly-bard");
        assert!(validate_pypi_name("my_pkg.x").is_ok());
        assert!(validate_pypi_name("pkg-").is_err());
        assert_eq!(PackageFormat::Pypi.normalize("My_Pkg"), "my-pkg");
        assert_eq!(PackageFormat::Cargo.normalize("Serde_Json"), "serde-json");
        assert_eq!(PackageFormat::Npm.normalize("@a/B"), "@a/B");
    }

    #[test]
    fn npm_names() {
        assert!(validate_npm_name("left-pad").is_ok());
        assert!(validate_npm_name("@acme/app").is_ok());
        for bad in [
            "@acme",
            "@/x",
            "Caps",
            "a/b",
            "_x",
            ".x",
            "@acme/../x",
            "@acme/a/b",
        ] {
            assert!(validate_npm_name(bad).is_err(), "{bad}");
        }
        assert_eq!(npm_scope("@acme/app"), Some("acme"));
        assert_eq!(npm_scope("app"), None);
    }

    #[test]
    fn deploy_tokens_by_scope_on_covered_projects() {
        let app = project(3, "acme/app", Visibility::Private);
        let group_owner = TokenOwner::Group {
            id: 1,
            path: path("acme"),
        };
        let read = token(group_owner.clone(), &[TokenScope::ReadPackageRegistry]);
        let write = token(group_owner, &[TokenScope::WritePackageRegistry]);
        assert_eq!(package_access(&read, Some(&app), Read), Allowed);
        assert_eq!(package_access(&read, Some(&app), Publish), Forbidden);
        assert_eq!(package_access(&write, Some(&app), Publish), Allowed);
        assert_eq!(package_access(&write, Some(&app), Delete), Allowed);
        assert_eq!(package_access(&write, Some(&app), Read), Forbidden);
        let other = project(4, "other/x", Visibility::Private);
        assert_eq!(package_access(&read, Some(&other), Read), NotFound);
        let public = project(5, "other/pub", Visibility::Public);
        assert_eq!(package_access(&read, Some(&public), Read), Allowed);
        assert_eq!(package_access(&write, Some(&public), Publish), NotFound);
        let registry_only = token(
            TokenOwner::Project {
                id: 3,
                path: path("acme/app"),
            },
            &[TokenScope::ReadRegistry],
        );
        assert_eq!(package_access(&registry_only, Some(&app), Read), Forbidden);
    }

    #[test]
    fn users_by_role_anonymous_on_public_projects_only() {
        let app = project(3, "acme/app", Visibility::Private);
        let on_app = |role| {
            user(&[(
                MembershipTarget::Project {
                    id: 3,
                    path: path("acme/app"),
                },
                role,
            )])
        };
        assert_eq!(
            package_access(&on_app(Role::Reporter), Some(&app), Read),
            Allowed
        );
        assert_eq!(
            package_access(&on_app(Role::Reporter), Some(&app), Publish),
            Forbidden
        );
        assert_eq!(
            package_access(&on_app(Role::Developer), Some(&app), Publish),
            Allowed
        );
        assert_eq!(
            package_access(&on_app(Role::Developer), Some(&app), Delete),
            Forbidden
        );
        assert_eq!(
            package_access(&on_app(Role::Maintainer), Some(&app), Delete),
            Allowed
        );
        assert_eq!(package_access(&user(&[]), Some(&app), Read), NotFound);
        let internal = project(6, "acme/int", Visibility::Internal);
        assert_eq!(package_access(&user(&[]), Some(&internal), Read), Allowed);
        assert_eq!(
            package_access(&user(&[]), Some(&internal), Publish),
            Forbidden
        );
        assert_eq!(
            package_access(&Principal::Anonymous, Some(&internal), Read),
            CredentialsRequired
        );
        let public = project(5, "acme/pub", Visibility::Public);
        assert_eq!(
            package_access(&Principal::Anonymous, Some(&public), Read),
            Allowed
        );
        assert_eq!(
            package_access(&Principal::Anonymous, Some(&public), Publish),
            CredentialsRequired
        );
        assert_eq!(
            package_access(&Principal::Anonymous, None, Read),
            CredentialsRequired
        );
        assert_eq!(package_access(&user(&[]), None, Read), NotFound);
    }

    #[test]
    fn crate_index_paths_follow_the_cargo_reference() {
        assert_eq!(crate_index_path("a"), "1/a");
        assert_eq!(crate_index_path("Ab"), "2/ab");
        assert_eq!(crate_index_path("abc"), "3/a/abc");
        assert_eq!(crate_index_path("Serde_json"), "se/rd/serde_json");
        assert_eq!(crate_of_index_path("se/rd/serde_json"), Some("serde_json"));
        assert_eq!(crate_of_index_path("3/a/abc"), Some("abc"));
        assert_eq!(crate_of_index_path("3/b/abc"), None);
        assert_eq!(crate_of_index_path("ab/cd/../abcd"), None);
        assert_eq!(crate_of_index_path("1/-"), None);
        assert_eq!(crate_of_index_path(""), None);
    }

    #[test]
    fn crate_names_are_cargo_s() {
        assert!(validate_crate_name("wvs_demo-2").is_ok());
        for bad in ["", "2abc", "a b", "a.b", "ä", &"a".repeat(65)] {
            assert!(validate_crate_name(bad).is_err(), "{bad:?}");
        }
    }
}
