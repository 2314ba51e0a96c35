//! The bare repositories under `<data-dir>/repositories/<full path>.git`, and how every git
//! process wvs-auth starts is set up.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::route::Oid;
use crate::domain::path::NamespacePath;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("cannot run {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("`{0}` failed: {1}")]
    Git(String, String),
}

/// Where repositories live and which `git` serves them.
#[derive(Debug, Clone)]
pub struct Repositories {
    root: PathBuf,
    git: OsString,
}

impl Repositories {
    /// `<data_dir>/repositories`, served by the `git` on `PATH` (or `WVS_AUTH_GIT`, for a git
    /// outside `PATH`; the test suite and the benchmark use the one on `PATH`).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("repositories"),
            git: std::env::var_os("WVS_AUTH_GIT").unwrap_or_else(|| "git".into()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/acme/app.git`. `project` is validated, so this never leaves the root.
    pub fn dir(&self, project: &NamespacePath) -> PathBuf {
        self.root.join(format!("{project}.git"))
    }

    /// The git-lfs "standalone" layout, `lfs/objects/aa/bb/<oid>` inside the bare
    /// repository: where `git lfs push` to a `file://` remote puts objects, so what an
    /// administrator pushes that way is what wvs-auth serves.
    pub fn lfs_object(&self, project: &NamespacePath, oid: &Oid) -> PathBuf {
        let o = oid.as_str();
        self.dir(project)
            .join("lfs/objects")
            .join(&o[0..2])
            .join(&o[2..4])
            .join(o)
    }

    /// A `git` command with a predictable environment. The global (per-user) config is
    /// ignored, so what the operator's `~/.gitconfig` says never changes what is served.
    /// `safe.directory=*` (command-line scope, the only non-system scope git honours for it)
    /// because the repositories are wvs-auth's own: the CLI may create them as another user
    /// (root in a container, the service user on the host) than the server that serves them,
    /// and git would otherwise refuse them as "dubious ownership".
    pub fn git(&self) -> Command {
        let mut cmd = Command::new(&self.git);
        for (key, value) in self.env() {
            cmd.env(key, value);
        }
        cmd
    }

    /// The environment of [`Self::git`], for callers that build their own command.
    pub fn env(&self) -> [(&'static str, &'static str); 4] {
        [
            ("GIT_CONFIG_GLOBAL", "/dev/null"),
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "safe.directory"),
            ("GIT_CONFIG_VALUE_0", "*"),
        ]
    }

    /// Command-scope config entries to add after [`Self::env`]'s: the new
    /// `GIT_CONFIG_COUNT` and the `GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` pairs. Command scope
    /// outranks the repository's config, which is how one authorised request is let through
    /// what the repository refuses by default.
    pub fn config_env(&self, extra: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
        const BASE: usize = 1; // safe.directory, in `env`
        let mut pairs = Vec::with_capacity(extra.len() * 2);
        for (i, (key, value)) in extra.iter().enumerate() {
            pairs.push((format!("GIT_CONFIG_KEY_{}", BASE + i), key.to_string()));
            pairs.push((format!("GIT_CONFIG_VALUE_{}", BASE + i), value.to_string()));
        }
        ((BASE + extra.len()).to_string(), pairs)
    }

    pub fn program(&self) -> &OsString {
        &self.git
    }

    /// Does the bare repository of `project` exist?
    pub fn exists(&self, project: &NamespacePath) -> bool {
        self.dir(project).join("HEAD").is_file()
    }

    /// Creates the bare repository of `project` unless it exists; `true` if it was created.
    ///
    /// Called by `project create`, and on first access for projects created before git
    /// support existed (so no migration step is needed). The repository is made under a
    /// temporary name and renamed into place, so two first requests racing each other (or a
    /// request and the CLI) never see a half-initialised repository: the loser's copy is
    /// dropped. The temporary name starts with `.`, which no project path can, so it is never
    /// served.
    pub fn ensure(&self, project: &NamespacePath) -> Result<bool, RepoError> {
        if self.exists(project) {
            return Ok(false);
        }
        let target = self.dir(project);
        let parent = target.parent().unwrap_or(&self.root).to_path_buf();
        let io = |p: &Path, e| RepoError::Io(p.display().to_string(), e);
        std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        let tmp = parent.join(format!(
            ".init-{}-{}.git",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let result = self.init_at(&tmp).and_then(|()| {
            match std::fs::rename(&tmp, &target) {
                Ok(()) => Ok(true),
                // Someone else won the race: theirs is as good as ours.
                Err(_) if self.exists(project) => Ok(false),
                Err(e) => Err(io(&target, e)),
            }
        });
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// `git init --bare` with `main` as the initial branch (what GitLab and current git
    /// propose), whatever the system's `init.defaultBranch`, and pushes over HTTP disabled in
    /// the repository itself: wvs-auth turns receive-pack on per request, only after it
    /// authorised a push ([`Self::config_env`]), so a repository served any other way (or a
    /// request that skipped the decision) still refuses pushes.
    fn init_at(&self, dir: &Path) -> Result<(), RepoError> {
        self.run(
            self.git()
                .args(["init", "--quiet", "--bare", "--initial-branch=main"])
                .arg(dir),
            "git init --bare",
        )?;
        self.run(
            self.git()
                .arg("-C")
                .arg(dir)
                .args(["config", "http.receivepack", "false"]),
            "git config http.receivepack false",
        )
    }

    fn run(&self, cmd: &mut Command, what: &str) -> Result<(), RepoError> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| RepoError::Spawn(self.git.to_string_lossy().into_owned(), e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RepoError::Git(
                what.to_string(),
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_creates_once_with_main_and_no_http_push() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Repositories::new(dir.path());
        let p = NamespacePath::parse("acme/platform/api").expect("path");
        assert!(!repos.exists(&p));
        assert!(repos.ensure(&p).expect("ensure"), "created");
        assert!(!repos.ensure(&p).expect("ensure again"), "already there");
        let repo = dir.path().join("repositories/acme/platform/api.git");
        let head = std::fs::read_to_string(repo.join("HEAD")).expect("HEAD");
        assert_eq!(head.trim(), "ref: refs/heads/main");
        let config = std::fs::read_to_string(repo.join("config")).expect("config");
        assert!(config.contains("receivepack = false"), "{config}");
        let leftovers: Vec<_> = std::fs::read_dir(repo.parent().expect("parent"))
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "temporary directories left behind");
    }

    #[test]
    fn lfs_objects_use_the_standalone_layout() {
        let repos = Repositories::new(Path::new("/data"));
        let p = NamespacePath::parse("acme/app").expect("path");
        let oid = Oid::parse(&"ab".repeat(32)).expect("oid");
        assert_eq!(
            repos.lfs_object(&p, &oid),
            PathBuf::from(format!(
                "/data/repositories/acme/app.git/lfs/objects/ab/ab/{}",
                "ab".repeat(32)
            ))
        );
    }
}
