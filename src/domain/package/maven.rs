//! Maven repository paths (the Maven 2 repository layout, as `mvn deploy` writes it and
//! GitLab stores it): `<group path>/<artifact>/<version>/<file>`, the artifact's
//! `maven-metadata.xml` one level up, and checksum files beside every file.
//!
//! A path is split and validated here before anything touches the disk or the database:
//! every segment comes from a safe alphabet, so a traversal never reaches the blob store,
//! and a file must be named after its artifact and version, so a stored file is always
//! where Maven looks for it.

use super::{safe_segment, validate_file_name, validate_version, Digests};

/// The metadata file of an artifact (and of a SNAPSHOT version).
pub const METADATA: &str = "maven-metadata.xml";

const SNAPSHOT: &str = "-SNAPSHOT";

/// The checksum files Maven reads and writes beside each file. They are never stored:
/// a GET is answered from the digests kept with the file, a PUT is checked against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Checksum {
    pub const ALL: [Checksum; 4] = [
        Checksum::Md5,
        Checksum::Sha1,
        Checksum::Sha256,
        Checksum::Sha512,
    ];

    /// The file name's suffix, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Checksum::Md5 => "md5",
            Checksum::Sha1 => "sha1",
            Checksum::Sha256 => "sha256",
            Checksum::Sha512 => "sha512",
        }
    }

    /// This checksum of a stored file, lower-case hex.
    pub fn of(self, digests: &Digests) -> &str {
        match self {
            Checksum::Md5 => &digests.md5,
            Checksum::Sha1 => &digests.sha1,
            Checksum::Sha256 => &digests.sha256,
            Checksum::Sha512 => &digests.sha512,
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Checksum::Md5 => 32,
            Checksum::Sha1 => 40,
            Checksum::Sha256 => 64,
            Checksum::Sha512 => 128,
        }
    }

    /// The file a checksum file is about, and which checksum: `a.jar.sha1` → `a.jar`, SHA-1.
    pub fn split(file: &str) -> Option<(&str, Checksum)> {
        let (base, ext) = file.rsplit_once('.')?;
        let kind = Checksum::ALL.into_iter().find(|c| c.extension() == ext)?;
        (!base.is_empty()).then_some((base, kind))
    }

    /// The digest in a checksum file as clients write it: the hex digest, optionally
    /// followed by whitespace and the file's name (`sha1sum`'s format). Lower-cased;
    /// `None` unless it is hex of this checksum's length.
    pub fn parse_body(self, body: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(body).ok()?;
        let digest = text.split_whitespace().next()?;
        (digest.len() == self.hex_len() && digest.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| digest.to_ascii_lowercase())
    }
}

/// What a path below `packages/maven/` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenPath {
    /// The group as a path: `com/example`.
    pub group_path: String,
    pub artifact_id: String,
    /// `None` for the artifact's own `maven-metadata.xml` (GitLab's versionless package).
    pub version: Option<String>,
    /// The stored file: a checksum file's suffix is taken off.
    pub file_name: String,
    /// Set when the path names a checksum of `file_name`.
    pub checksum: Option<Checksum>,
}

impl MavenPath {
    /// The group as Maven spells it: `com.example`.
    pub fn group_id(&self) -> String {
        self.group_path.replace('/', ".")
    }

    /// The package's name, GitLab's: the path of the artifact (`com/example/my-app`).
    pub fn package_name(&self) -> String {
        format!("{}/{}", self.group_path, self.artifact_id)
    }

    /// The version the file is recorded under: the artifact's metadata has none, and the
    /// store's empty version stands for that.
    pub fn stored_version(&self) -> &str {
        self.version.as_deref().unwrap_or("")
    }

    pub fn is_metadata(&self) -> bool {
        self.file_name == METADATA
    }

    /// May the file be written again with other bytes? Metadata (Maven rewrites it on every
    /// deploy) and SNAPSHOT versions (re-deployed by design) may; a release's files may not.
    pub fn replaceable(&self) -> bool {
        self.is_metadata() || self.version.as_deref().is_some_and(is_snapshot)
    }
}

/// A SNAPSHOT version (`1.0-SNAPSHOT`), which Maven re-deploys under new timestamps.
pub fn is_snapshot(version: &str) -> bool {
    version.len() > SNAPSHOT.len() && version.ends_with(SNAPSHOT)
}

/// Why a Maven path is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MavenPathError {
    #[error("the Maven path needs a group, an artifact, a version and a file")]
    TooShort,
    #[error("the Maven path has an empty segment")]
    EmptySegment,
    #[error("the Maven path segment {0:?} is invalid")]
    Segment(String),
    #[error("the Maven version {0:?} is invalid")]
    Version(String),
    #[error("the file name {0:?} is invalid")]
    FileName(String),
    #[error("the file {file:?} is not named after {artifact} {version}")]
    Foreign {
        file: String,
        artifact: String,
        version: String,
    },
}

/// A group segment or an artifact id: `[A-Za-z0-9._-]`, starting alphanumeric.
fn name_segment(s: &str) -> Result<(), MavenPathError> {
    if safe_segment(s, |c| matches!(c, b'.' | b'_' | b'-')) {
        Ok(())
    } else {
        Err(MavenPathError::Segment(s.into()))
    }
}

/// Splits and validates a path below `packages/maven/` (already percent-decoded).
///
/// `maven-metadata.xml` belongs to the artifact above it, unless the segment above it is a
/// SNAPSHOT version (GitLab's rule, `Packages::Maven::FindOrCreatePackageService`): so
/// `com/example/my-app/maven-metadata.xml` is my-app's, and
/// `com/example/my-app/1.0-SNAPSHOT/maven-metadata.xml` that version's. Any other file
/// needs at least a group, an artifact and a version above it, and must be named
/// `<artifact>-<version>…` (for a SNAPSHOT the version without `-SNAPSHOT`, which a
/// timestamp replaces).
pub fn parse_path(path: &str) -> Result<MavenPath, MavenPathError> {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(MavenPathError::EmptySegment);
    }
    let n = segments.len();
    if n < 3 {
        return Err(MavenPathError::TooShort);
    }
    let last = segments[n - 1];
    validate_file_name(last).map_err(|_| MavenPathError::FileName(last.into()))?;
    let (file_name, checksum) = match Checksum::split(last) {
        Some((base, kind)) => (base, Some(kind)),
        None => (last, None),
    };
    validate_file_name(file_name).map_err(|_| MavenPathError::FileName(last.into()))?;
    let version_level = file_name != METADATA || (n >= 4 && is_snapshot(segments[n - 2]));
    let (group, artifact, version) = if version_level {
        if n < 4 {
            return Err(MavenPathError::TooShort);
        }
        (&segments[..n - 3], segments[n - 3], Some(segments[n - 2]))
    } else {
        (&segments[..n - 2], segments[n - 2], None)
    };
    for s in group.iter().chain([&artifact]) {
        name_segment(s)?;
    }
    if let Some(v) = version {
        validate_version(v).map_err(|_| MavenPathError::Version(v.into()))?;
        if file_name != METADATA && !named_after(file_name, artifact, v) {
            return Err(MavenPathError::Foreign {
                file: file_name.into(),
                artifact: artifact.into(),
                version: v.into(),
            });
        }
    }
    Ok(MavenPath {
        group_path: group.join("/"),
        artifact_id: artifact.into(),
        version: version.map(str::to_string),
        file_name: file_name.into(),
        checksum,
    })
}

/// `my-app-1.0.jar`, `my-app-1.0-sources.jar` of my-app 1.0; `my-app-1.0-2026….jar` and
/// `my-app-1.0-SNAPSHOT.jar` of 1.0-SNAPSHOT. The prefix must end where a segment does
/// (`my-app-1.00.jar` is not 1.0's).
fn named_after(file: &str, artifact: &str, version: &str) -> bool {
    let base = version.strip_suffix(SNAPSHOT).unwrap_or(version);
    file.strip_prefix(artifact)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.strip_prefix(base))
        .is_some_and(|r| r.starts_with(['.', '-']))
}

/// A timestamped file of a SNAPSHOT version, as `mvn deploy` names it:
/// `my-app-1.0-20261203.124500-3-sources.jar` is build 3 of 1.0-SNAPSHOT, deployed at
/// 2026-12-03 12:45:00 UTC, classifier `sources`, extension `jar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile<'a> {
    /// `yyyyMMdd.HHmmss`.
    pub timestamp: &'a str,
    pub build: u32,
    pub classifier: Option<&'a str>,
    pub extension: &'a str,
}

impl SnapshotFile<'_> {
    /// The `<value>` of `<snapshotVersion>`: the version as the file names it.
    pub fn value(&self, version: &str) -> String {
        let base = version.strip_suffix(SNAPSHOT).unwrap_or(version);
        format!("{base}-{}-{}", self.timestamp, self.build)
    }
}

/// The timestamp, build number, classifier and extension of a SNAPSHOT file, if `file` is
/// a timestamped file of `artifact` `version` (not `my-app-1.0-SNAPSHOT.jar`).
pub fn snapshot_file<'a>(artifact: &str, version: &str, file: &'a str) -> Option<SnapshotFile<'a>> {
    let base = version.strip_suffix(SNAPSHOT)?;
    let rest = file
        .strip_prefix(artifact)?
        .strip_prefix('-')?
        .strip_prefix(base)?
        .strip_prefix('-')?;
    let timestamp = rest.get(..15)?;
    let well_formed = timestamp.bytes().enumerate().all(|(i, b)| {
        if i == 8 {
            b == b'.'
        } else {
            b.is_ascii_digit()
        }
    });
    if !well_formed {
        return None;
    }
    let rest = rest.get(15..)?.strip_prefix('-')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let build = rest.get(..digits)?.parse().ok()?;
    let rest = rest.get(digits..)?;
    let (classifier, extension) = if let Some(r) = rest.strip_prefix('-') {
        let (classifier, extension) = r.split_once('.')?;
        if classifier.is_empty() {
            return None;
        }
        (Some(classifier), extension)
    } else {
        (None, rest.strip_prefix('.')?)
    };
    (!extension.is_empty()).then_some(SnapshotFile {
        timestamp,
        build,
        classifier,
        extension,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(p: &str) -> MavenPath {
        parse_path(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn files_split_into_group_artifact_version_and_file() {
        let p = parsed("com/example/my-app/1.0/my-app-1.0.jar");
        assert_eq!(p.group_path, "com/example");
        assert_eq!(p.group_id(), "com.example");
        assert_eq!(p.artifact_id, "my-app");
        assert_eq!(p.version.as_deref(), Some("1.0"));
        assert_eq!(p.file_name, "my-app-1.0.jar");
        assert_eq!(p.checksum, None);
        assert_eq!(p.package_name(), "com/example/my-app");
        assert!(!p.replaceable());
        let single = parsed("junit/junit/4.13/junit-4.13-sources.jar");
        assert_eq!(single.group_id(), "junit");
        assert_eq!(single.file_name, "junit-4.13-sources.jar");
    }

    #[test]
    fn checksum_suffixes_name_the_file_they_check() {
        let p = parsed("com/example/my-app/1.0/my-app-1.0.pom.sha1");
        assert_eq!(p.file_name, "my-app-1.0.pom");
        assert_eq!(p.checksum, Some(Checksum::Sha1));
        for c in Checksum::ALL {
            let p = parsed(&format!("a/b/1/b-1.jar.{}", c.extension()));
            assert_eq!((p.file_name.as_str(), p.checksum), ("b-1.jar", Some(c)));
        }
        assert_eq!(Checksum::split("x.jar.md5"), Some(("x.jar", Checksum::Md5)));
        assert_eq!(Checksum::split("x.jar"), None);
        assert_eq!(Checksum::split(".sha1"), None);
        assert_eq!(parsed("a/b/1/b-1.jar.asc").checksum, None);
    }

    #[test]
    fn metadata_belongs_to_the_artifact_unless_under_a_snapshot() {
        let p = parsed("com/example/my-app/maven-metadata.xml");
        assert_eq!(p.group_path, "com/example");
        assert_eq!(p.artifact_id, "my-app");
        assert_eq!(p.version, None);
        assert_eq!(p.stored_version(), "");
        assert!(p.is_metadata() && p.replaceable());
        let p = parsed("com/example/my-app/maven-metadata.xml.sha256");
        assert_eq!(
            (p.is_metadata(), p.checksum),
            (true, Some(Checksum::Sha256))
        );
        let s = parsed("com/example/my-app/1.0-SNAPSHOT/maven-metadata.xml");
        assert_eq!(s.artifact_id, "my-app");
        assert_eq!(s.version.as_deref(), Some("1.0-SNAPSHOT"));
        // A release version has no metadata of its own: GitLab reads it as an artifact's.
        let r = parsed("com/example/my-app/1.0/maven-metadata.xml");
        assert_eq!(
            (r.group_path.as_str(), r.artifact_id.as_str()),
            ("com/example/my-app", "1.0")
        );
        assert_eq!(parsed("junit/junit/maven-metadata.xml").group_id(), "junit");
    }

    #[test]
    fn snapshots_are_replaceable_releases_are_not() {
        assert!(parsed("a/b/1.0-SNAPSHOT/b-1.0-20261203.124500-1.jar").replaceable());
        assert!(parsed("a/b/1.0-SNAPSHOT/b-1.0-SNAPSHOT.jar").replaceable());
        assert!(!parsed("a/b/1.0/b-1.0.jar").replaceable());
        assert!(is_snapshot("1.0-SNAPSHOT"));
        assert!(!is_snapshot("-SNAPSHOT") && !is_snapshot("1.0-snapshot"));
    }

    #[test]
    fn bad_paths_are_refused() {
        use MavenPathError::*;
        let err = |p: &str| parse_path(p).err();
        assert_eq!(err("a/b/b-1.jar"), Some(TooShort));
        assert_eq!(err("b/maven-metadata.xml"), Some(TooShort));
        assert_eq!(err("maven-metadata.xml"), Some(TooShort));
        assert_eq!(err(""), Some(EmptySegment));
        assert_eq!(err("a//b/1/b-1.jar"), Some(EmptySegment));
        assert_eq!(err("/a/b/1/b-1.jar"), Some(EmptySegment));
        assert_eq!(err("a/b/1/"), Some(EmptySegment));
        assert!(matches!(err("a/../1/x-1.jar"), Some(Segment(_))));
        assert!(matches!(err("../b/1/b-1.jar"), Some(Segment(_))));
        assert!(matches!(err("a/b/../b-1.jar"), Some(Version(_))));
        assert!(matches!(err("a/b/1/.."), Some(FileName(_))));
        assert!(matches!(err("a/b c/1/b-1.jar"), Some(Segment(_))));
        assert!(matches!(err("a/b/1/b-1.jar%00"), Some(FileName(_))));
        assert!(matches!(err("a/b/1/other-1.jar"), Some(Foreign { .. })));
        assert!(matches!(err("a/b/1.0/b-1.00.jar"), Some(Foreign { .. })));
        assert!(matches!(err("a/b/1.0/b-1.0"), Some(Foreign { .. })));
        assert!(matches!(err("a/b/1/.sha1"), Some(FileName(_))));
    }

    proptest::proptest! {
        /// Any input is answered; what passes has only safe segments.
        #[test]
        fn parsing_never_panics_and_accepts_only_safe_segments(raw in "[a-z0-9./%-]{0,40}") {
            if let Ok(p) = parse_path(&raw) {
                for s in p.group_path.split('/').chain([p.artifact_id.as_str(), p.file_name.as_str()]) {
                    proptest::prop_assert!(!s.is_empty() && !s.contains("..") && !s.contains('/'));
                }
            }
        }
    }

    #[test]
    fn checksum_bodies_are_hex_optionally_with_a_file_name() {
        let sha1 = "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed";
        assert_eq!(
            Checksum::Sha1.parse_body(sha1.as_bytes()).as_deref(),
            Some(sha1)
        );
        let upper = format!("{}  my-app-1.0.jar\n", sha1.to_uppercase());
        assert_eq!(
            Checksum::Sha1.parse_body(upper.as_bytes()).as_deref(),
            Some(sha1)
        );
        assert_eq!(Checksum::Md5.parse_body(sha1.as_bytes()), None);
        assert_eq!(Checksum::Sha1.parse_body(b"zz"), None);
        assert_eq!(Checksum::Sha1.parse_body(b""), None);
        assert_eq!(Checksum::Sha1.parse_body(&[0xff, 0xfe]), None);
    }

    #[test]
    fn snapshot_files_give_their_timestamp_build_classifier_and_extension() {
        let f = snapshot_file(
            "my-app",
            "1.0-SNAPSHOT",
            "my-app-1.0-20261203.124500-3-sources.jar",
        )
        .expect("timestamped");
        assert_eq!(
            f,
            SnapshotFile {
                timestamp: "20261203.124500",
                build: 3,
                classifier: Some("sources"),
                extension: "jar"
            }
        );
        assert_eq!(f.value("1.0-SNAPSHOT"), "1.0-20261203.124500-3");
        let pom = snapshot_file(
            "my-app",
            "1.0-SNAPSHOT",
            "my-app-1.0-20261203.124500-12.pom",
        )
        .expect("timestamped");
        assert_eq!(
            (pom.build, pom.classifier, pom.extension),
            (12, None, "pom")
        );
        for not in [
            "my-app-1.0-SNAPSHOT.jar",
            "my-app-1.0-2026120.124500-1.jar",
            "my-app-1.0-20261203.124500-.jar",
            "my-app-1.0-20261203.124500-1",
            "my-app-1.0-20261203.124500-1-.jar",
            "other-1.0-20261203.124500-1.jar",
        ] {
            assert_eq!(snapshot_file("my-app", "1.0-SNAPSHOT", not), None, "{not}");
        }
        assert_eq!(
            snapshot_file("my-app", "1.0", "my-app-1.0-20261203.124500-1.jar"),
            None
        );
    }
}
