//! NuGet's rules, pure: package ids, versions as NuGet normalises and orders them, and the
//! `.nuspec` manifest (Microsoft's "Package versioning" and ".nuspec reference" pages).
//!
//! The registry keys everything by the lower-cased id and the lower-cased normalised
//! version, as the v3 protocol's flat container and registration URLs do, so `Demo.Lib`
//! `1.0` and `demo.lib` `1.0.0.0` are one package version and a second push of it is
//! refused.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::PackageInputError;

/// nuget.org's limit on an id's length.
pub const MAX_ID_LEN: usize = 100;

/// Longest version (or version range) string taken from a manifest.
const MAX_VERSION_LEN: usize = 128;

/// An id as NuGet accepts one: `\w+([.-]\w+)*` over ASCII letters, digits and `_`, at most
/// 100 characters. ASCII only, so an id is always one safe path segment.
pub fn validate_id(id: &str) -> Result<(), PackageInputError> {
    let word = |w: &str| !w.is_empty() && w.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    let ok = !id.is_empty() && id.len() <= MAX_ID_LEN && id.split(['.', '-']).all(word);
    if ok {
        Ok(())
    } else {
        Err(PackageInputError::Name(id.into()))
    }
}

/// The id as the protocol's URLs and the store's keys have it: ids are case-insensitive.
pub fn lower_id(id: &str) -> String {
    id.to_ascii_lowercase()
}

/// A NuGet version: one to four numeric parts, an optional pre-release label after `-`
/// (dot-separated parts of `[0-9A-Za-z-]`) and optional build metadata after `+`, which
/// never takes part in identity or ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NugetVersion {
    /// Major, minor, patch and revision; missing parts are 0.
    pub parts: [u32; 4],
    pub release: Vec<String>,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a NuGet version")]
pub struct VersionError(pub String);

fn label_ok(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

impl NugetVersion {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let err = || VersionError(text.chars().take(MAX_VERSION_LEN).collect());
        if text.is_empty() || text.len() > MAX_VERSION_LEN {
            return Err(err());
        }
        let (rest, metadata) = match text.split_once('+') {
            Some((rest, meta)) => {
                if !meta.split('.').all(label_ok) {
                    return Err(err());
                }
                (rest, Some(meta.to_string()))
            }
            None => (text, None),
        };
        let (numbers, release) = match rest.split_once('-') {
            Some((numbers, release)) => {
                if !release.split('.').all(label_ok) {
                    return Err(err());
                }
                (numbers, release.split('.').map(str::to_string).collect())
            }
            None => (rest, Vec::new()),
        };
        let mut parts = [0u32; 4];
        for (count, piece) in numbers.split('.').enumerate() {
            if count == 4 || piece.is_empty() || !piece.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            // Leading zeros are allowed and dropped (`1.01` is `1.1.0`), as NuGet parses.
            parts[count] = piece.parse().map_err(|_| err())?;
        }
        Ok(Self {
            parts,
            release,
            metadata,
        })
    }

    /// NuGet's normalised form: three parts at least, the revision only when it is not
    /// 0, leading zeros gone, the pre-release label kept as written, no build metadata.
    pub fn normalized(&self) -> String {
        let [major, minor, patch, revision] = self.parts;
        let mut out = format!("{major}.{minor}.{patch}");
        if revision != 0 {
            out.push_str(&format!(".{revision}"));
        }
        if !self.release.is_empty() {
            out.push('-');
            out.push_str(&self.release.join("."));
        }
        out
    }

    /// The key of the version in URLs and the store: normalised and lower-cased.
    pub fn key(&self) -> String {
        self.normalized().to_ascii_lowercase()
    }

    pub fn is_prerelease(&self) -> bool {
        !self.release.is_empty()
    }

    /// SemVer 2.0.0 precedence as NuGet applies it: numbers first; a release sorts after
    /// its pre-releases; labels part by part, numeric parts numerically and below
    /// alphanumeric ones, which compare case-insensitively; metadata ignored.
    pub fn precedence(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts).then_with(|| {
            match (self.release.is_empty(), other.release.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.release.iter().zip(&other.release) {
                        let by = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
                        };
                        if by != Ordering::Equal {
                            return by;
                        }
                    }
                    self.release.len().cmp(&other.release.len())
                }
            }
        })
    }
}

/// A dependency's allowed versions as the registration documents show them: a bare
/// version means "that or later" (`[1.0.0, )`), interval notation is kept once its
/// versions parse. `None` when the manifest gives none (any version).
pub fn version_range(text: &str) -> Result<Option<String>, VersionError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let err = || VersionError(text.chars().take(MAX_VERSION_LEN).collect());
    if text.len() > MAX_VERSION_LEN {
        return Err(err());
    }
    let (Some(open), Some(close)) = (text.chars().next(), text.chars().last()) else {
        return Err(err());
    };
    if !matches!(open, '[' | '(') {
        return NugetVersion::parse(text)
            .map(|v| Some(format!("[{}, )", v.normalized())))
            .map_err(|_| err());
    }
    if !matches!(close, ']' | ')') || text.len() < 2 {
        return Err(err());
    }
    let inner = &text[1..text.len() - 1];
    let bounds: Vec<&str> = inner.split(',').map(str::trim).collect();
    let ok = match bounds.as_slice() {
        // `[1.0]`: exactly that version.
        [exact] => open == '[' && close == ']' && NugetVersion::parse(exact).is_ok(),
        [low, high] => {
            let parses = |b: &str| b.is_empty() || NugetVersion::parse(b).is_ok();
            parses(low) && parses(high) && !(low.is_empty() && high.is_empty() && open == '[')
        }
        _ => false,
    };
    if ok {
        Ok(Some(text.to_string()))
    } else {
        Err(err())
    }
}

/// What the registry keeps of a `.nuspec`: what the registration documents and search
/// show. Serialised as the package version's metadata, with the manifest itself beside
/// it (`nuspec`), which the flat container serves back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nuspec {
    pub id: String,
    /// The version as written in the manifest (build metadata included).
    pub version: String,
    pub authors: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    #[serde(default)]
    pub dependency_groups: Vec<DependencyGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyGroup {
    /// `None` for the group that applies to every framework.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_framework: Option<String>,
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
}

/// Why a manifest is refused; each is a 400 the client prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NuspecError {
    #[error("the .nuspec is not well-formed XML: {0}")]
    Xml(String),
    #[error("the .nuspec has no <package><metadata>")]
    NotNuspec,
    #[error("the .nuspec has no <{0}>")]
    Missing(&'static str),
    #[error("invalid package id {0:?}")]
    Id(String),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("dependency {0:?} has an invalid version range")]
    Range(String),
}

/// Elements are matched by local name: manifests come in several schema namespaces
/// (2010/07, 2011/08, 2012/06, 2013/05), all with the same elements.
fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

fn text_of(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name)
        .map(|n| {
            n.descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .filter(|t| !t.is_empty())
}

fn dependency(node: roxmltree::Node<'_, '_>) -> Result<Dependency, NuspecError> {
    let id = node.attribute("id").unwrap_or_default().trim().to_string();
    validate_id(&id).map_err(|_| NuspecError::Id(id.clone()))?;
    let range = version_range(node.attribute("version").unwrap_or_default())
        .map_err(|_| NuspecError::Range(id.clone()))?;
    Ok(Dependency { id, range })
}

/// Reads a manifest. DTDs are refused (no entity expansion) and the node count is bounded,
/// so a hostile manifest costs at most its (already bounded) size.
pub fn parse_nuspec(xml: &str) -> Result<Nuspec, NuspecError> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 100_000,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| NuspecError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "package" {
        return Err(NuspecError::NotNuspec);
    }
    let metadata = child(root, "metadata").ok_or(NuspecError::NotNuspec)?;
    let id = text_of(metadata, "id").ok_or(NuspecError::Missing("id"))?;
    validate_id(&id).map_err(|_| NuspecError::Id(id.clone()))?;
    let version = text_of(metadata, "version").ok_or(NuspecError::Missing("version"))?;
    NugetVersion::parse(&version)?;
    let mut dependency_groups = Vec::new();
    if let Some(deps) = child(metadata, "dependencies") {
        let mut ungrouped = Vec::new();
        for node in deps.children().filter(|n| n.is_element()) {
            match node.tag_name().name() {
                "group" => {
                    let dependencies = node
                        .children()
                        .filter(|n| n.is_element() && n.tag_name().name() == "dependency")
                        .map(dependency)
                        .collect::<Result<Vec<_>, _>>()?;
                    dependency_groups.push(DependencyGroup {
                        target_framework: node
                            .attribute("targetFramework")
                            .map(str::trim)
                            .filter(|f| !f.is_empty())
                            .map(str::to_string),
                        dependencies,
                    });
                }
                "dependency" => ungrouped.push(dependency(node)?),
                _ => {}
            }
        }
        if !ungrouped.is_empty() {
            dependency_groups.insert(
                0,
                DependencyGroup {
                    target_framework: None,
                    dependencies: ungrouped,
                },
            );
        }
    }
    Ok(Nuspec {
        id,
        version,
        authors: text_of(metadata, "authors").unwrap_or_default(),
        description: text_of(metadata, "description").unwrap_or_default(),
        title: text_of(metadata, "title"),
        summary: text_of(metadata, "summary"),
        tags: text_of(metadata, "tags")
            .unwrap_or_default()
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        project_url: text_of(metadata, "projectUrl"),
        license_url: text_of(metadata, "licenseUrl"),
        icon_url: text_of(metadata, "iconUrl"),
        dependency_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> NugetVersion {
        NugetVersion::parse(s).expect(s)
    }

    #[test]
    fn ids_follow_nuget() {
        for ok in ["Newtonsoft.Json", "a", "My_Lib-2.Core", &"a".repeat(100)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a/b",
            "a b",
            "ä",
            "../x",
            "a.-b",
            &"a".repeat(101),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(lower_id("Demo.Lib"), "demo.lib");
    }

    #[test]
    fn versions_normalise_as_nuget_does() {
        for (raw, normalized) in [
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("1.0.0.0", "1.0.0"),
            ("1.0.0.4", "1.0.0.4"),
            ("1.01.1", "1.1.1"),
            ("01.2.003-Beta.01", "1.2.3-Beta.01"),
            ("1.0.0+build.5", "1.0.0"),
            ("2.0.0-RC.1+sha.abc", "2.0.0-RC.1"),
            ("1.0.0-beta-2", "1.0.0-beta-2"),
        ] {
            assert_eq!(v(raw).normalized(), normalized, "{raw}");
        }
        assert_eq!(v("1.0.0-Beta").key(), "1.0.0-beta");
        assert!(v("1.0-rc").is_prerelease() && !v("1.0+meta").is_prerelease());
        for bad in [
            "",
            "1.",
            ".1",
            "1..2",
            "1.2.3.4.5",
            "a.b",
            "1.0-",
            "1.0+",
            "1.0-a..b",
            "1.0-ä",
            "1.0 ",
            "99999999999",
            "1/2",
            "1.0-a_b",
        ] {
            assert!(NugetVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions_order_by_semver_precedence() {
        let mut all = [
            "2.0.0",
            "1.0.0",
            "1.0.0-beta.2",
            "1.0.0-alpha",
            "1.0.0-beta.11",
            "1.0.0-Beta",
            "1.0.0.1",
            "1.0.0-rc.1",
            "1.0.0-alpha.1",
        ]
        .map(v);
        all.sort_by(|a, b| a.precedence(b));
        let order: Vec<String> = all.iter().map(|x| x.normalized()).collect();
        assert_eq!(
            order,
            [
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-Beta",
                "1.0.0-beta.2",
                "1.0.0-beta.11",
                "1.0.0-rc.1",
                "1.0.0",
                "1.0.0.1",
                "2.0.0"
            ]
        );
        assert_eq!(v("1.0+a").precedence(&v("1.0.0+b")), Ordering::Equal);
    }

    #[test]
    fn ranges() {
        assert_eq!(version_range("13.0.1"), Ok(Some("[13.0.1, )".into())));
        assert_eq!(version_range(" 2.0 "), Ok(Some("[2.0.0, )".into())));
        assert_eq!(version_range(""), Ok(None));
        for kept in ["[1.0, 2.0)", "(, 3.0]", "[1.0]", "(1.0,)"] {
            assert_eq!(version_range(kept), Ok(Some(kept.into())), "{kept}");
        }
        for bad in ["[1.0", "(1.0)", "[,]", "[a, b]", "1.0, 2.0", "[1,2,3]", "x"] {
            assert!(version_range(bad).is_err(), "{bad:?}");
        }
    }

    const NUSPEC: &str = r#"<?xml version="1.0"?>
<package xmlns="http://schemas.microsoft.com/packaging/2012/06/nuspec.xsd">
  <metadata>
    <id>Demo.Lib</id>
    <version>1.2.0-Beta+build.7</version>
    <authors>The Test</authors>
    <description>made by the test</description>
    <title>Demo</title>
    <tags>demo wvs,nuget</tags>
    <dependencies>
      <group>
        <dependency id="Other.Lib" version="2.0" />
      </group>
      <group targetFramework=".NETFramework4.5">
        <dependency id="Newtonsoft.Json" version="[13.0.1, 14.0)" />
        <dependency id="No.Range" />
      </group>
    </dependencies>
  </metadata>
</package>"#;

    #[test]
    fn manifests_are_read_into_dependency_groups() {
        let n = parse_nuspec(&format!("\u{feff}{NUSPEC}")).expect("valid");
        assert_eq!(n.id, "Demo.Lib");
        assert_eq!(n.version, "1.2.0-Beta+build.7");
        assert_eq!(n.authors, "The Test");
        assert_eq!(n.description, "made by the test");
        assert_eq!(n.title.as_deref(), Some("Demo"));
        assert_eq!(n.tags, ["demo", "wvs", "nuget"]);
        assert_eq!(n.dependency_groups.len(), 2);
        assert_eq!(n.dependency_groups[0].target_framework, None);
        assert_eq!(
            n.dependency_groups[0].dependencies,
            [Dependency {
                id: "Other.Lib".into(),
                range: Some("[2.0.0, )".into())
            }]
        );
        let net45 = &n.dependency_groups[1];
        assert_eq!(net45.target_framework.as_deref(), Some(".NETFramework4.5"));
        assert_eq!(
            net45.dependencies[0].range.as_deref(),
            Some("[13.0.1, 14.0)")
        );
        assert_eq!(net45.dependencies[1].range, None);
        let json = serde_json::to_value(&n).expect("serialises");
        assert_eq!(
            json["dependencyGroups"][1]["targetFramework"],
            ".NETFramework4.5"
        );
        assert_eq!(serde_json::from_value::<Nuspec>(json).ok(), Some(n));
    }

    #[test]
    fn ungrouped_dependencies_form_one_group() {
        let xml = r#"<package><metadata><id>A</id><version>1.0</version>
            <dependencies><dependency id="B" version="1.0"/></dependencies>
            </metadata></package>"#;
        let n = parse_nuspec(xml).expect("valid");
        assert_eq!(n.dependency_groups.len(), 1);
        assert_eq!(n.dependency_groups[0].dependencies[0].id, "B");
        assert_eq!(n.authors, "");
    }

    #[test]
    fn bad_manifests_are_refused() {
        let with =
            |meta: &str| parse_nuspec(&format!("<package><metadata>{meta}</metadata></package>"));
        assert!(matches!(
            parse_nuspec("<package>"),
            Err(NuspecError::Xml(_))
        ));
        assert_eq!(parse_nuspec("<other/>"), Err(NuspecError::NotNuspec));
        assert_eq!(parse_nuspec("<package/>"), Err(NuspecError::NotNuspec));
        assert_eq!(
            with("<version>1.0</version>"),
            Err(NuspecError::Missing("id"))
        );
        assert_eq!(with("<id>A</id>"), Err(NuspecError::Missing("version")));
        assert!(matches!(
            with("<id>../x</id><version>1.0</version>"),
            Err(NuspecError::Id(_))
        ));
        assert!(matches!(
            with("<id>A</id><version>one</version>"),
            Err(NuspecError::Version(_))
        ));
        assert_eq!(
            with(
                r#"<id>A</id><version>1.0</version><dependencies><dependency id="B" version="[x"/></dependencies>"#
            ),
            Err(NuspecError::Range("B".into()))
        );
        let bomb = r#"<!DOCTYPE package [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>
            <package><metadata><id>A</id><version>1.0</version><description>&b;</description>
            </metadata></package>"#;
        assert!(matches!(parse_nuspec(bomb), Err(NuspecError::Xml(_))));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_keys_are_stable(raw in "\\PC{0,40}") {
            if let Ok(version) = NugetVersion::parse(&raw) {
                let again = NugetVersion::parse(&version.normalized()).expect("normal form parses");
                proptest::prop_assert_eq!(again.key(), version.key());
                proptest::prop_assert!(!version.key().contains('/'));
            }
            let _ = version_range(&raw);
            let _ = parse_nuspec(&raw);
            if validate_id(&raw).is_ok() {
                proptest::prop_assert!(!raw.contains('/') && !raw.contains(".."));
            }
        }
    }
}
