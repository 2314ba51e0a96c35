//! Users through the real registry (issue 6, SPEC §2): Debian's `docker-registry` trusting
//! wvs-auth, driven by the docker CLI and skopeo with personal access tokens and passwords.
//! A developer pushes, a reporter pulls but cannot push, only a maintainer deletes. The
//! registry runs `deploy/registry/config.yml` with `storage.delete.enabled` turned on from
//! the environment (the shipped config keeps deletes off).
//!
//! The tools are required: a missing one fails the test, it never skips it.

use crate::common;

use std::path::PathBuf;

use common::tools::*;
use common::users::password;
use common::{Env, Server};

const RW: &str = "read_registry,write_registry";

struct Fixture {
    registry: RegistryProcess,
    _auth: Server,
    scratch: tempfile::TempDir,
    env: Env,
}

impl Fixture {
    /// Project `acme/app` with `dev` (developer, password), `rep` (reporter) and `boss`
    /// (maintainer, via the group).
    fn new() -> Self {
        require_tools(REGISTRY_TOOLS);
        let env = Env::new();
        for command in ["group create acme", "project create acme/app", "keys init"] {
            env.cli_ok(&command.split(' ').collect::<Vec<_>>());
        }
        env.user("dev", Some("dev-password-1"));
        env.member("dev", &["--project", "acme/app"], "developer");
        env.user("rep", None);
        env.member("rep", &["--project", "acme/app"], "reporter");
        env.user("boss", None);
        env.member("boss", &["--group", "acme"], "maintainer");
        let auth = env.serve(&[]);
        let registry = RegistryProcess::trusting(
            &env,
            &auth,
            &[("REGISTRY_STORAGE_DELETE_ENABLED", "true".to_string())],
        );
        Self {
            registry,
            _auth: auth,
            scratch: tempfile::tempdir().expect("tempdir"),
            env,
        }
    }

    fn dir(&self, label: &str) -> PathBuf {
        let dir = self.scratch.path().join(unique(label));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }
}

#[test]
fn docker_developer_pushes_reporter_pulls_but_cannot_push() {
    let fx = Fixture::new();
    let docker = Docker::new(&fx.registry.host);
    let dev = fx.env.pat("dev", RW);
    let rep = fx.env.pat("rep", RW);
    let reference = fx.registry.image("acme/app", "v1");

    let id = docker.build(&reference);
    docker.login_ok(&dev);
    assert_ok(
        &docker.push(&reference),
        "docker push with a developer's PAT",
    );

    docker.rmi(&reference);
    docker.logout();
    docker.login_ok(&rep);
    assert_ok(
        &docker.pull(&reference),
        "docker pull with a reporter's PAT",
    );
    assert_eq!(docker.image_id(&reference), id, "pulled a different image");
    let other = fx.registry.image("acme/app", "v2");
    docker.build(&other);
    assert_refused(&docker.push(&other), "docker push with a reporter's PAT");

    // The developer's password works like the PAT.
    docker.logout();
    docker.login_ok(&password("dev", "dev-password-1"));
    assert_ok(
        &docker.push(&other),
        "docker push with a developer's password",
    );

    // A revoked PAT: docker login fails at once.
    fx.env
        .cli_ok(&["user", "token", "revoke", &rep.id.to_string()]);
    assert_bad_credentials(&docker.login(&rep), "docker login with a revoked PAT");
}

#[test]
fn skopeo_only_maintainers_delete() {
    let fx = Fixture::new();
    let skopeo = Skopeo::new(fx.scratch.path());
    let dev = fx.env.pat("dev", RW);
    let rep = fx.env.pat("rep", "read_registry");
    let boss = fx.env.pat("boss", RW);
    let boss_read_only = fx.env.pat("boss", "read_registry");
    let image = oci_image(&fx.dir("layout"), &unique("users"));
    let dest = fx.registry.docker_url("acme/app", "v1");

    assert_ok(
        &skopeo.push(&image, &dest, Some(&dev)),
        "skopeo copy in, developer",
    );
    skopeo.pull_matches(&dest, &fx.dir("out"), Some(&rep), &image);
    assert_refused(
        &skopeo.push(
            &image,
            &fx.registry.docker_url("acme/app", "rep"),
            Some(&rep),
        ),
        "skopeo copy in, reporter",
    );

    let delete = |who| {
        let mut args = vec!["delete".to_string(), "--tls-verify=false".into()];
        args.extend(creds_args("--", Some(who)));
        args.push(dest.clone());
        skopeo.run(&args)
    };
    for (who, what) in [
        (&rep, "reporter"),
        (&dev, "developer"),
        (&boss_read_only, "maintainer's read-only PAT"),
    ] {
        assert_refused(&delete(who), &format!("skopeo delete, {what}"));
        assert_ok(
            &skopeo.inspect(&dest, Some(&dev)),
            &format!("image still there after the {what}'s delete"),
        );
    }
    assert_ok(&delete(&boss), "skopeo delete, maintainer");
    let gone = skopeo.inspect(&dest, Some(&dev));
    assert!(
        !gone.status.success() && text(&gone).to_lowercase().contains("manifest unknown"),
        "image still there after the maintainer's delete: {}\n{}",
        text(&gone),
        fx.registry.log()
    );
}
