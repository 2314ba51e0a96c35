//! Abuse as test cases (issue 18): floods of failing credentials, of distinct bogus clients
//! and of password guesses must neither lock out good clients nor grow memory without end.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common;
use common::http::{agent, answer, basic, creds};
use common::{env_with_projects, Server};

/// `GET /jwt/auth` for a pull of acme/app, optionally from a forwarded address.
fn token_request(base: &str, auth: &str, forwarded: Option<&str>) -> u16 {
    let url = format!("{base}/jwt/auth?service=container_registry&scope=repository:acme/app:pull");
    let mut req = agent().get(&url).set("Authorization", auth);
    if let Some(f) = forwarded {
        req = req.set("X-Forwarded-For", f);
    }
    answer(req.call()).status
}

/// Peak resident memory of the server so far, kB.
fn peak_rss_kb(server: &Server) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Good requests sent at once by [`a_flood_of_wrong_secrets_never_locks_out_good_clients`].
const GOOD_AT_ONCE: usize = 100;

/// SPEC §7: while one client floods wrong secrets — also under the real token's own
/// username — from 127.0.0.1, every good request from that same address succeeds: 100
/// parallel token requests, `docker login`-shaped ones, and real `docker login`s.
#[test]
fn a_flood_of_wrong_secrets_never_locks_out_good_clients() {
    use common::tools::{Docker, RegistryProcess};
    let env = env_with_projects();
    let t = env.token(&["--project", "acme/app"], "read_registry", &[]);
    let server = env.serve(&[]);
    let registry = RegistryProcess::trusting(&env, &server, &[]);
    let flooding = Arc::new(AtomicBool::new(true));
    let refused = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (flooding, refused) = (flooding.clone(), refused.clone());
        let url = server.url.clone();
        let victim = t.username.clone();
        std::thread::spawn(move || {
            let mut sent = 0;
            while flooding.load(Ordering::Relaxed) && sent < 20_000 {
                let user = if sent % 2 == 0 {
                    victim.as_str()
                } else {
                    "intruder"
                };
                let status = token_request(&url, &basic(user, "wvsdt-guess"), None);
                if status == 429 {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                sent += 1;
            }
            sent
        })
    };
    // Let the flood get the address and the username banned first.
    for _ in 0..200 {
        if refused.load(Ordering::Relaxed) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the flood was never banned"
    );

    let good = creds(&t);
    // 100 at once from this one address: within the per-client limit of requests in
    // flight (128 by default), which is another limit; here only the bans are tested.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..GOOD_AT_ONCE)
            .map(|_| s.spawn(|| token_request(&server.url, &good, None)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let login_url = format!(
        "{}/jwt/auth?account={}&service=container_registry",
        server.url,
        t.username.replace('+', "%2B")
    );
    let logins: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..GOOD_AT_ONCE)
            .map(|_| {
                s.spawn(|| {
                    answer(agent().get(&login_url).set("Authorization", &good).call()).status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("login"))
            .collect()
    });
    assert!(logins.iter().all(|s| *s == 200), "{logins:?}");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| Docker::new(&registry.host).login_ok(&t));
        }
    });
    flooding.store(false, Ordering::Relaxed);
    let sent = flood.join().expect("flood thread");
    assert!(sent > 0);
    // The flood itself stays banned.
    assert_eq!(
        token_request(&server.url, &basic("intruder", "wvsdt-guess"), None),
        429
    );
}

/// A flood of distinct bogus clients (forged forwarded addresses behind a trusted proxy)
/// does not make the throttle forget a ban, nor stop it banning the next client.
#[test]
fn bans_hold_through_a_flood_of_distinct_clients() {
    let env = env_with_projects();
    let t = env.token(&["--project", "acme/app"], "read_registry", &[]);
    let server = env.serve(&["--trusted-proxy", "127.0.0.1", "--throttle-failures", "3"]);
    let bad = |user: &str| basic(user, "wvsdt-guess");
    for _ in 0..3 {
        token_request(&server.url, &bad("a"), Some("198.51.100.7"));
    }
    assert_eq!(
        token_request(&server.url, &bad("b"), Some("198.51.100.7")),
        429
    );
    let per_thread = 5_000;
    std::thread::scope(|s| {
        for thread in 0..4u32 {
            let server = &server;
            s.spawn(move || {
                for i in 0..per_thread {
                    let client = format!("2001:db8:{thread:x}:{i:x}::1");
                    token_request(
                        &server.url,
                        &basic(&format!("u{thread}-{i}"), "wvsdt-x"),
                        Some(&client),
                    );
                }
            });
        }
    });
    assert_eq!(
        token_request(&server.url, &bad("c"), Some("198.51.100.7")),
        429,
        "the ban was forgotten"
    );
    for _ in 0..3 {
        token_request(&server.url, &bad("d"), Some("203.0.113.50"));
    }
    assert_eq!(
        token_request(&server.url, &bad("e"), Some("203.0.113.50")),
        429
    );
    assert_eq!(
        token_request(&server.url, &creds(&t), Some("198.51.100.7")),
        200
    );
}

/// 200 parallel wrong passwords at the sign-in page from one address: at most the limit
/// are checked (401), the rest are refused before any hashing (429); 64 parallel good
/// sign-ins all succeed; memory stays bounded throughout.
#[test]
fn parallel_password_guesses_are_bounded() {
    use common::web::{csrf_field, pair, set_cookies, user};
    let env = env_with_projects();
    user(&env, "alice", "correct horse battery staple", &[]);
    let server = env.serve(&[]);
    let form = |password: &str, csrf: &str| {
        format!(
            "csrf_token={csrf}&username=alice&password={}&return_to=%2F-%2F",
            password.replace(' ', "+")
        )
    };
    let (page, cookies) = set_cookies(agent().get(&format!("{}/-/sign_in", server.url)).call());
    let csrf = csrf_field(&page.body);
    let cookie = common::web::cookie(&cookies, "wvs_sign_in_csrf")
        .map(|c| pair(c))
        .expect("csrf cookie");
    let post = |password: &str| {
        answer(
            agent()
                .post(&format!("{}/-/sign_in", server.url))
                .set("Cookie", &cookie)
                .set("Content-Type", "application/x-www-form-urlencoded")
                .send_string(&form(password, &csrf)),
        )
        .status
    };
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|_| s.spawn(|| post("not the password")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sign-in"))
            .collect()
    });
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + throttled, 200, "{statuses:?}");
    assert!(
        checked <= 30,
        "{checked} wrong passwords were checked (limit 30)"
    );
    let rss = peak_rss_kb(&server);
    assert!(rss < 300 * 1024, "peak RSS {rss} kB after 200 guesses");

    // Good sign-ins from another address are not held back by that ban.
    let good = env.serve(&["--trusted-proxy", "127.0.0.1"]);
    let (page, cookies) = set_cookies(agent().get(&format!("{}/-/sign_in", good.url)).call());
    let csrf = csrf_field(&page.body);
    let cookie = common::web::cookie(&cookies, "wvs_sign_in_csrf")
        .map(|c| pair(c))
        .expect("csrf cookie");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let (cookie, csrf, url) = (&cookie, &csrf, &good.url);
                s.spawn(move || {
                    answer(
                        ureq::AgentBuilder::new()
                            .redirects(0)
                            .build()
                            .post(&format!("{url}/-/sign_in"))
                            .set("Cookie", cookie)
                            .set("X-Forwarded-For", &format!("192.0.2.{i}"))
                            .set("Content-Type", "application/x-www-form-urlencoded")
                            .send_string(&form("correct horse battery staple", csrf)),
                    )
                    .status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sign-in"))
            .collect()
    });
    assert!(statuses.iter().all(|s| *s == 303), "{statuses:?}");
    let rss = peak_rss_kb(&good);
    assert!(rss < 300 * 1024, "peak RSS {rss} kB after 64 sign-ins");
}

/// Issue 18, point 7: a PAT typed as the username is redacted in the log and the audit log;
/// a deploy token may not take a user's name or a secret-looking one; scopes with dot or
/// empty segments are refused; a `return_to` with CR/LF or NUL is refused cleanly.
#[test]
fn the_smaller_holes_are_closed() {
    use common::web::{csrf_field, pair, set_cookies, user};
    let env = env_with_projects();
    user(&env, "root", "correct horse battery staple", &[]);
    let server = env.serve(&[]);

    let pat_like = "wvspat-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(token_request(&server.url, &basic(pat_like, "x"), None), 401);
    let audit = env.cli_ok(&["audit", "--json"]);
    assert!(
        !audit.contains(pat_like),
        "a PAT-looking username was audited: {audit}"
    );
    let log = std::fs::read_to_string(env.path(&format!("serve-{}.log", server.port)))
        .expect("server log");
    assert!(!log.contains(pat_like), "a PAT-looking username was logged");

    for name in ["root", "ROOT", "wvspat-x", "wvsdt-y"] {
        let out = env.cli(&[
            "token",
            "create",
            "--project",
            "acme/app",
            "--name",
            "n",
            "--scopes",
            "read_registry",
            "--username",
            name,
        ]);
        assert!(!out.status.success(), "--username {name} was accepted");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).lines().count(),
            1,
            "{out:?}"
        );
    }

    let t = env.token(
        &["--project", "acme/app"],
        "read_registry,write_registry",
        &[],
    );
    for scope in [
        "repository:acme/app/../../oss/lib:push",
        "repository:acme//app:pull",
        "repository:./acme/app:pull",
    ] {
        let url = format!(
            "{}/jwt/auth?service=container_registry&scope={}",
            server.url,
            scope.replace('/', "%2F")
        );
        let a = answer(agent().get(&url).set("Authorization", &creds(&t)).call());
        assert_eq!(a.status, 400, "{scope}: {a:?}");
    }

    let (page, cookies) = set_cookies(agent().get(&format!("{}/-/sign_in", server.url)).call());
    let csrf = csrf_field(&page.body);
    let cookie = common::web::cookie(&cookies, "wvs_sign_in_csrf")
        .map(|c| pair(c))
        .expect("csrf cookie");
    for evil in ["%2F-%2Fa%0D%0ASet-Cookie%3A+x%3Dy", "%2F-%2Fa%00b"] {
        let a = answer(
            ureq::AgentBuilder::new()
                .redirects(0)
                .build()
                .post(&format!("{}/-/sign_in", server.url))
                .set("Cookie", &cookie)
                .set("Content-Type", "application/x-www-form-urlencoded")
                .send_string(&format!(
                    "csrf_token={csrf}&username=root&password=correct+horse+battery+staple&return_to={evil}"
                )),
        );
        assert_eq!(a.status, 303, "{a:?}");
        assert_eq!(a.header("location"), Some("/-/"), "{a:?}");
    }
}

/// Issue 18, point 11: offboarding. A blocked user's password, PAT and browser session stop
/// on the next request on every surface and work again once unblocked; a deleted user's are
/// gone; the deploy token they created keeps working throughout; all of it is audited.
#[test]
fn blocked_and_deleted_users_lose_access_their_tokens_do_not() {
    use common::web::{csrf_field, pair, set_cookies, user};
    let env = env_with_projects();
    const PASSWORD: &str = "correct horse battery staple";
    user(
        &env,
        "leaver",
        PASSWORD,
        &[("--project", "acme/app", "maintainer")],
    );
    env.cli_ok(&["user", "create", "boss", "--admin"]);
    let pat = env.pat("leaver", "api,read_registry");
    let admin = env.pat("boss", "api");
    let server = env.serve(&[]);
    let api = |method: &str, path: &str, secret: &str| {
        answer(
            agent()
                .request(method, &format!("{}/api/v4{path}", server.url))
                .set("PRIVATE-TOKEN", secret)
                .call(),
        )
    };
    // The deploy token the leaver makes, through the API.
    let made = answer(
        agent()
            .post(&format!(
                "{}/api/v4/projects/acme%2Fapp/deploy_tokens",
                server.url
            ))
            .set("PRIVATE-TOKEN", &pat.secret)
            .send_json(serde_json::json!({"name": "ci", "scopes": ["read_registry"]})),
    );
    assert_eq!(made.status, 201, "{made:?}");
    let deploy = made.json();
    let deploy_auth = basic(
        deploy["username"].as_str().expect("username"),
        deploy["token"].as_str().expect("token"),
    );
    let pat_auth = basic("leaver", &pat.secret);
    let password_auth = basic("leaver", PASSWORD);
    let (page, cookies) = set_cookies(agent().get(&format!("{}/-/sign_in", server.url)).call());
    let csrf = csrf_field(&page.body);
    let csrf_cookie = common::web::cookie(&cookies, "wvs_sign_in_csrf")
        .map(|c| pair(c))
        .expect("csrf cookie");
    let (_, signed) = set_cookies(
        ureq::AgentBuilder::new()
            .redirects(0)
            .build()
            .post(&format!("{}/-/sign_in", server.url))
            .set("Cookie", &csrf_cookie)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!(
                "csrf_token={csrf}&username=leaver&password=correct+horse+battery+staple&return_to=%2F-%2F"
            )),
    );
    let session = common::web::cookie(&signed, "wvs_session")
        .map(|c| pair(c))
        .expect("signed in");
    let page = || {
        answer(
            ureq::AgentBuilder::new()
                .redirects(0)
                .build()
                .get(&format!("{}/-/", server.url))
                .set("Cookie", &session)
                .call(),
        )
        .status
    };
    let everything = || {
        (
            token_request(&server.url, &pat_auth, None),
            token_request(&server.url, &password_auth, None),
            api("GET", "/projects/acme%2Fapp/deploy_tokens", &pat.secret).status,
            page(),
            token_request(&server.url, &deploy_auth, None),
        )
    };
    assert_eq!(everything(), (200, 200, 200, 200, 200));

    env.cli_ok(&["user", "block", "leaver"]);
    assert_eq!(everything(), (401, 401, 401, 303, 200), "blocked");
    let users: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["user", "list", "--json"])).expect("json");
    let leaver_id = users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["username"] == "leaver"))
        .and_then(|u| u["id"].as_i64())
        .expect("leaver listed");
    assert_eq!(
        api(
            "POST",
            &format!("/users/{leaver_id}/unblock"),
            &admin.secret
        )
        .status,
        201
    );
    let (pat_now, password_now, api_now, _, deploy_now) = everything();
    assert_eq!(
        (pat_now, password_now, api_now, deploy_now),
        (200, 200, 200, 200)
    );
    // Only admins offboard.
    assert_eq!(
        api("DELETE", &format!("/users/{leaver_id}"), &pat.secret).status,
        403
    );
    assert_eq!(
        api("DELETE", &format!("/users/{leaver_id}"), &admin.secret).status,
        204
    );
    let (pat_now, password_now, api_now, page_now, deploy_now) = everything();
    assert_eq!(
        (pat_now, password_now, api_now, page_now, deploy_now),
        (401, 401, 401, 303, 200),
        "deleted"
    );
    let audit = env.cli_ok(&["audit"]);
    for action in ["user_blocked", "user_unblocked", "user_deleted"] {
        assert!(audit.contains(action), "{action} missing: {audit}");
    }
}

/// Issue 18, point 12: SIGTERM lets an in-flight download finish, then the server exits 0;
/// new connections are refused once it stops listening.
#[test]
fn sigterm_lets_a_streaming_download_finish_and_exits_zero() {
    use std::io::{Read, Write};
    let env = env_with_projects();
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let mut server = env.serve(&[]);
    let path = "/api/v4/projects/acme%2Fapp/packages/generic/big/1.0.0/big.bin";
    let body: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    let up = answer(
        agent()
            .put(&format!("{}{path}", server.url))
            .set("Deploy-Token", &rw.secret)
            .send_bytes(&body),
    );
    assert_eq!(up.status, 201, "{up:?}");

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nDeploy-Token: {}\r\nConnection: close\r\n\r\n",
        rw.secret
    )
    .expect("request");
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Read a little, then ask the server to stop while most of the body is still to come.
    while received.len() < 1 << 20 {
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "closed early");
        received.extend_from_slice(&chunk[..n]);
    }
    let pid = server.child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(term.success());
    loop {
        std::thread::sleep(Duration::from_millis(2));
        let n = stream.read(&mut chunk).expect("read after SIGTERM");
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
    }
    let split = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head")
        + 4;
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &received[..40]
    );
    assert_eq!(
        received.len() - split,
        body.len(),
        "the download was cut short"
    );
    assert!(received[split..] == body[..], "the download differs");
    let mut status = None;
    for _ in 0..400 {
        if let Some(s) = server.child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.expect("the server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

/// Issue 18, point 5: one object listed 730 times is answered (and signed) once; an
/// anonymous batch may ask for at most 100 distinct objects, an authenticated one more.
#[test]
fn lfs_batches_cannot_amplify_signing() {
    let env = env_with_projects();
    common::web::user(
        &env,
        "dev",
        "correct horse battery staple",
        &[("--project", "acme/pub", "developer")],
    );
    let server = env.serve(&[]);
    let dev = basic("dev", "correct horse battery staple");
    let object = put_lfs_object(&server, &dev, b"an lfs object");
    let batch = |objects: Vec<serde_json::Value>, auth: Option<&str>| {
        let mut req = agent()
            .post(&format!(
                "{}/acme/pub.git/info/lfs/objects/batch",
                server.url
            ))
            .set("Accept", "application/vnd.git-lfs+json")
            .set("Content-Type", "application/vnd.git-lfs+json");
        if let Some(a) = auth {
            req = req.set("Authorization", a);
        }
        answer(req.send_json(serde_json::json!({
            "operation": "download", "transfers": ["basic"], "objects": objects
        })))
    };
    let copies = vec![object; 730];
    let a = batch(copies, None);
    assert_eq!(a.status, 200, "{a:?}");
    let objects = a.json()["objects"].as_array().cloned().unwrap_or_default();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(objects[0]["actions"]["download"]["href"].is_string());
    let distinct: Vec<_> = (0..150)
        .map(|i| serde_json::json!({"oid": format!("{i:064x}"), "size": 1}))
        .collect();
    assert_eq!(batch(distinct.clone(), None).status, 400);
    let a = batch(distinct, Some(&dev));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["objects"].as_array().map(Vec::len), Some(150));

    // 100 distinct stored objects (100 signatures a batch), asked for by 8 anonymous
    // clients at once: their signing waits for its one place, and while it does every
    // batch is still answered in full and every good token request succeeds.
    let stored: Vec<_> = (0..100)
        .map(|i| put_lfs_object(&server, &dev, format!("object {i}").as_bytes()))
        .collect();
    let t = env.token(&["--project", "acme/app"], "read_registry", &[]);
    let good = basic(&t.username, &t.secret);
    std::thread::scope(|scope| {
        let anonymous: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    (0..3)
                        .map(|_| {
                            let a = batch(stored.clone(), None);
                            assert_eq!(a.status, 200, "{a:?}");
                            a.json()["objects"].as_array().map_or(0, |o| {
                                o.iter()
                                    .filter(|o| o["actions"]["download"]["href"].is_string())
                                    .count()
                            })
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        for _ in 0..50 {
            assert_eq!(token_request(&server.url, &good, None), 200);
        }
        for a in anonymous {
            assert_eq!(a.join().expect("anonymous client"), 300);
        }
    });
}

/// Uploads `content` as an LFS object of acme/pub; the batch API's object for it.
fn put_lfs_object(server: &Server, auth: &str, content: &[u8]) -> serde_json::Value {
    use sha2::{Digest, Sha256};
    let oid: String = Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let put = answer(
        agent()
            .put(&format!(
                "{}/acme/pub.git/info/lfs/objects/{oid}",
                server.url
            ))
            .set("Authorization", auth)
            .send_bytes(content),
    );
    assert_eq!(put.status, 200, "{put:?}");
    serde_json::json!({"oid": oid, "size": content.len()})
}

/// The git tests' installation with one commit in the public project `oss/lib`.
fn public_git_project() -> (common::Env, common::git::GitClient) {
    use common::git::{bare, with_git_projects, GitClient};
    let env = with_git_projects();
    let git = GitClient::new();
    let work = env.path("work");
    git.seed(&work, b"an lfs object");
    git.push_file(&work, &bare(&env.data_dir(), "oss/lib"));
    (env, git)
}

/// Anonymous upload-pack POSTs to a public project whose bodies stall, or inflate past the
/// cap, hold no git process: with two process slots, 60 stalled requests in flight, a real
/// `git clone` of the same project still succeeds, a gzip bomb is refused with a 400, and
/// the server never runs more git processes than its slots.
#[test]
fn stalled_and_inflating_git_bodies_hold_no_git_process() {
    use common::git::GitClient;
    use std::io::Write;
    use std::net::TcpStream;

    let (env, git) = public_git_project();
    let server = env.serve(&["--max-git-processes", "2"]);
    let mut stalled = Vec::new();
    for _ in 0..60 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let head = "POST /oss/lib.git/git-upload-pack HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/x-git-upload-pack-request\r\n\
             Content-Length: 100000\r\n\r\n0032want ";
        s.write_all(head.as_bytes()).expect("send head");
        stalled.push(s);
    }
    let git_children = || {
        let me = server.child.id().to_string();
        std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| {
                        std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
                            // pid (comm) state ppid ...
                            let after = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
                            after.split_whitespace().nth(1) == Some(me.as_str())
                        })
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(git_children(), 0, "stalled bodies started git processes");
    let dir = env.path("clone");
    let url = common::git::url(&server, None, "oss/lib.git");
    let out = git.clone(&url, &dir, &[]);
    assert!(out.status.success(), "{}", common::git::text(&out));
    assert!(dir.join("README").is_file());

    // 256 MiB of zeros gzips to about 250 kB; inflated, it is past the 64 MiB cap.
    let bomb = std::process::Command::new("sh")
        .args(["-c", "head -c 268435456 /dev/zero | gzip -1"])
        .output()
        .expect("gzip");
    assert!(bomb.status.success() && bomb.stdout.len() < 2_000_000);
    let a = answer(
        agent()
            .post(&format!("{}/oss/lib.git/git-upload-pack", server.url))
            .set("Content-Type", "application/x-git-upload-pack-request")
            .set("Content-Encoding", "gzip")
            .send_bytes(&bomb.stdout),
    );
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        peak_rss_kb(&server) < 200_000,
        "{} kB",
        peak_rss_kb(&server)
    );

    // Eight clones at once through two slots: they queue, none fails.
    let clones: Vec<_> = (0..8)
        .map(|i| {
            let (url, dir) = (url.clone(), env.path(&format!("clone{i}")));
            std::thread::spawn(move || GitClient::new().clone(&url, &dir, &[]))
        })
        .collect();
    let mut most = 0;
    while clones.iter().any(|c| !c.is_finished()) {
        most = most.max(git_children());
        std::thread::sleep(Duration::from_millis(5));
    }
    for c in clones {
        let out = c.join().expect("clone thread");
        assert!(out.status.success(), "{}", common::git::text(&out));
    }
    assert!(most <= 2, "{most} git processes at once");
    drop(stalled);
}

/// 1,100 stalled POSTs from one client, under a 1,024-descriptor limit: that client gets
/// its in-flight share and 429s beyond it, the server keeps accepting, a good client's token
/// requests and a `git clone` succeed meanwhile, and the stalled bodies are cut off once
/// `--body-idle-timeout` passes.
#[test]
fn stalled_bodies_cannot_exhaust_descriptors_or_hold_connections() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let (env, git) = public_git_project();
    let t = env.token(&["--project", "acme/app"], "read_registry", &[]);
    let server = env.serve_with(
        &["prlimit", "--nofile=1024:1024", "--"],
        &["--trusted-proxy", "127.0.0.1", "--body-idle-timeout", "8"],
    );
    let paths = ["/jwt/auth", "/oss/lib.git/git-upload-pack"];
    let mut stalled = Vec::new();
    let mut busy = 0;
    for i in 0..1100 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 10.6.6.6\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 100000\r\n\r\ngrant_type=",
            paths[i % paths.len()]
        );
        s.write_all(head.as_bytes()).expect("send head");
        stalled.push(s);
    }
    // Every head is in; now see which were refused at once (the rest wait for their bodies).
    std::thread::sleep(Duration::from_millis(500));
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_millis(2)))
            .expect("timeout");
        let mut first = [0u8; 12];
        if let Ok(12) = s.read(&mut first) {
            if &first == b"HTTP/1.1 429" {
                busy += 1;
            }
        }
    }
    assert!(
        busy >= 900,
        "{busy} of 1100 stalled requests were refused at once"
    );
    // Served while the flood is held, not after its bodies time out (8 s).
    let prompt = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(4))
        .build();
    let url = format!(
        "{}/jwt/auth?service=container_registry&scope=repository:acme/app:pull",
        server.url
    );
    for _ in 0..50 {
        let a = answer(prompt.get(&url).set("Authorization", &creds(&t)).call());
        assert_eq!(a.status, 200, "{a:?}");
    }
    let dir = env.path("clone");
    let out = git.clone(&common::git::url(&server, None, "oss/lib.git"), &dir, &[]);
    assert!(out.status.success(), "{}", common::git::text(&out));

    // Past the idle timeout every stalled request has been answered or its connection
    // closed: a read returns at once instead of blocking.
    std::thread::sleep(Duration::from_secs(9));
    let mut open = 0;
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_millis(5)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    open += 1;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    assert_eq!(open, 0, "{open} stalled connections still held open");
    assert_eq!(token_request(&server.url, &creds(&t), None), 200);
}

/// Floods leave a bounded trace: one client's 2,000 wrong secrets write at most its
/// per-minute share of access-log lines and audit rows, and 3,000 distinct clients at most
/// the overall share (the rest are counted into one summary per minute).
#[test]
fn floods_leave_bounded_logs_and_audit_rows() {
    let env = env_with_projects();
    let server = env.serve(&["--trusted-proxy", "127.0.0.1"]);
    // (forwarded address, username) pairs, sent from four threads.
    let send = |clients: Vec<(String, String)>| {
        let threads: Vec<_> = clients
            .chunks(clients.len().div_ceil(4))
            .map(<[(String, String)]>::to_vec)
            .map(|chunk| {
                let url = server.url.clone();
                std::thread::spawn(move || {
                    for (ip, user) in chunk {
                        token_request(&url, &basic(&user, "wvsdt-guess"), Some(&ip));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("flood thread");
        }
    };
    send(vec![("10.1.1.1".to_string(), "intruder".to_string()); 2000]);
    // Distinct addresses and usernames: no ban ever applies, every attempt is a failure.
    send(
        (0..3000)
            .map(|i| (format!("10.2.{}.{}", i / 250, i % 250), format!("guess{i}")))
            .collect(),
    );
    let log = std::fs::read_to_string(env.path(&format!("serve-{}.log", server.port)))
        .expect("server log");
    let one = log.lines().filter(|l| l.contains("ip=10.1.1.1 ")).count();
    let many = log.lines().filter(|l| l.contains("ip=10.2.")).count();
    assert!(one <= 30, "{one} log lines for one client's 2,000 refusals");
    assert!(many <= 1200, "{many} log lines for 3,000 distinct clients");
    assert!(log.len() < 1_000_000, "{} bytes of log", log.len());
    let audit = env.cli_ok(&["audit", "--limit", "100000"]);
    let failures = audit
        .lines()
        .filter(|l| l.contains("auth_failure "))
        .count();
    assert!(failures >= 30, "failures are still audited: {failures}");
    assert!(failures <= 630, "{failures} audit rows for 5,000 failures");
}

/// `--audit-retention-days`: events older than that go at start (and hourly), newer ones
/// stay, and the pruning itself is an audit event.
#[test]
fn audit_retention_prunes_old_events() {
    let env = env_with_projects();
    let old = (chrono::Utc::now() - chrono::Duration::days(40))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for _ in 0..7 {
        env.sql(&format!(
            "INSERT INTO audit_events (at, action, actor, detail) \
             VALUES ('{old}', 'auth_failure', 'old', 'ip=10.0.0.1')"
        ));
    }
    let before = env.cli_ok(&["audit", "--limit", "100000"]);
    assert_eq!(before.matches("actor=old").count(), 7);
    let kept = before.lines().count() - 7;
    let _server = env.serve(&["--audit-retention-days", "30"]);
    let mut after = String::new();
    for _ in 0..100 {
        after = env.cli_ok(&["audit", "--limit", "100000"]);
        if after.contains("audit_pruned") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        after.contains("audit_pruned") && after.contains("deleted 7 events"),
        "{after}"
    );
    assert!(!after.contains("actor=old"), "{after}");
    assert!(
        after.lines().count() > kept,
        "newer events were kept: {after}"
    );
}
