//! Signing ceiling for bench/token_bench.sh: how many registry JWTs wvs-auth's own signer
//! (`JwtSigner`, aws-lc) makes per second on this machine with no HTTP, database or client
//! around it: the token server's upper bound, to set beside `openssl speed rsa2048`.
//!
//!     cargo run --release --example sign_speed -- [RS256|ES256] [SECONDS] [THREADS]
//!
//! Prints `sign_speed alg=RS256 threads=2 seconds=5.0 signs=... per_s=... cpu_per_s=...`:
//! `per_s` by wall-clock time, `cpu_per_s` by the process's CPU time (what `openssl speed`
//! reports by default).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wvs_auth::keys::{JwtSigner, KeyMaterial, SigningAlg, TokenHeader};

/// utime + stime of this process in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let alg = match args.first().map(String::as_str) {
        None | Some("RS256") => SigningAlg::Rs256,
        Some("ES256") => SigningAlg::Es256,
        Some(other) => return Err(format!("unknown algorithm {other}").into()),
    };
    let seconds: f64 = args.get(1).map_or(Ok(5.0), |s| s.parse())?;
    let threads: usize = match args.get(2) {
        Some(s) => s.parse()?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };

    let m = KeyMaterial::generate(alg)?;
    let signer = Arc::new(JwtSigner::from_pem(
        &m.kid,
        alg,
        &m.private_pem,
        &m.cert_pem,
        TokenHeader::default(),
    )?);
    // Claims the size and shape of a real registry token (registry/token.rs).
    let claims = serde_json::json!({
        "iss": "wvs-auth", "sub": "wvs+deploy-token-1", "aud": "container_registry",
        "iat": 1_700_000_000, "nbf": 1_699_999_995, "exp": 1_700_000_300,
        "jti": "0b5b8a4e-3a5e-4a8e-9f51-2d6f3c1f7a10",
        "access": [{"type": "repository", "name": "bench/app", "actions": ["pull", "push"]}],
        "auth_type": "deploy_token",
    });
    signer.sign(&claims)?; // first use seeds aws-lc's RNG; not measured

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (signer, claims, stop, count) =
                (signer.clone(), claims.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if signer.sign(&claims).is_ok() {
                        n += 1;
                    }
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu0).max(0.01);
    let n = count.load(Ordering::Relaxed) as f64;
    println!(
        "sign_speed alg={} threads={threads} seconds={wall:.1} signs={n} per_s={:.1} cpu_per_s={:.1}",
        alg.name(),
        n / wall,
        n / cpu * threads as f64
    );
    Ok(())
}
