//! Which modular-exponentiation kernel aws-lc signs RSA with on this CPU.
//!
//! Why this exists: the RSA signature is what a registry token costs (about 97 % of a token
//! request's instructions). On x86-64 CPUs with ADX and BMI2, aws-lc — like OpenSSL — signs
//! RSA-2048 with its MULX/ADX Montgomery code, a preference measured on Intel cores. On some
//! AMD EPYC machines wvs-auth was benchmarked on (AVX2, no AVX-512), its AVX2 "RSAZ" kernel
//! for 1024-bit moduli (the two CRT halves of an RSA-2048 key) is 15–20 % faster. On CPUs
//! with AVX-512 IFMA, aws-lc computes both halves at once in an IFMA kernel whatever the ADX
//! bit says, and clearing ADX only slows the rest. Same library, same constant-time code,
//! same signatures; only the choice of kernel differs.
//!
//! aws-lc reads its CPU-capability mask once, from the `OPENSSL_ia32cap` environment
//! variable, in a constructor that runs before `main`. So `serve` decides first thing: two
//! short-lived child processes (`wvs-auth __rsa-kernel-probe`), one with each mask, time
//! exactly the operation in question (the pair of 1024-bit constant-time exponentiations of
//! an RSA-2048 signature, through the same aws-lc entry point its RSA code calls), one after
//! the other for [`PROBE_MILLIS`] each, and if the ADX-cleared mask is clearly faster the
//! server executes itself again (same pid, same arguments) with it. The probes use no key
//! and no randomness (aws-lc's RNG spends ~60 ms gathering jitter entropy on first use), so
//! they add about 50 ms to startup. A mask the operator set is never touched;
//! `rsa_kernel = "library"` keeps aws-lc's own choice.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{KeyStore, SigningAlg};

/// aws-lc's (and OpenSSL's) CPU-capability override.
pub const CAPS_ENV: &str = "OPENSSL_ia32cap";

/// Leaves CPUID leaf 1 alone (`~0` clears nothing) and clears ADX (leaf 7 EBX bit 19) from
/// leaf 7. With ADX gone, `rsaz_avx2_preferred()` holds and 1024-bit exponentiations take the
/// AVX2 kernel. BMI2 stays, so SHA-2 and the rest keep their fast paths.
pub const AVX2_CAPS: &str = "~0:~0x80000";

/// How long each probe runs. Long enough for about a hundred exponentiations per core on a
/// slow machine, short enough that startup stays well under 200 ms.
pub const PROBE_MILLIS: u64 = 40;

/// AVX2 must beat the library's choice by this factor before it is used: a smaller lead is
/// within the noise of a 40 ms measurement.
const MIN_GAIN: f64 = 1.05;

/// How long `serve` waits for both probes before keeping the library's choice.
const PROBE_DEADLINE: Duration = Duration::from_secs(3);

/// The `rsa_kernel` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RsaKernel {
    /// Time both kernels at start and use the faster.
    #[default]
    Auto,
    /// aws-lc's own choice (MULX/ADX where the CPU has it).
    Library,
    /// The AVX2 RSAZ kernel, without measuring.
    Avx2,
}

/// Pairs of 1024-bit modular exponentiations (one RSA-2048 signature's worth) per second
/// with each mask, all cores together, from the probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub library: f64,
    pub avx2: f64,
}

/// Set on the re-executed server so that it neither probes again nor loops.
const CHOSEN_ENV: &str = "WVS_AUTH_RSA_KERNEL_CHOSEN";

/// What `serve` decided, for its log line.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing to choose: see [`no_choice_on_this_cpu`], or no RSA key is active.
    NotApplicable(&'static str),
    /// The operator set `OPENSSL_ia32cap`; it wins.
    OperatorCaps(String),
    /// `rsa_kernel = "library"`.
    Library,
    /// `rsa_kernel = "avx2"`.
    Avx2Forced,
    /// Measured; `avx2` says which one is in use.
    Probed { measured: Measured, avx2: bool },
    /// A probe failed or timed out; the library's choice stays.
    ProbeFailed(String),
    /// This process is the re-executed server, started with the AVX2 mask.
    Chosen,
    /// AVX2 was chosen but executing again failed; the library's choice stays.
    ExecFailed(String),
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::NotApplicable(why) => write!(f, "the library's choice ({why})"),
            Decision::OperatorCaps(caps) => write!(f, "as {CAPS_ENV}={caps} says"),
            Decision::Library => f.write_str("the library's choice (rsa_kernel = library)"),
            Decision::Avx2Forced => f.write_str("AVX2 RSAZ (rsa_kernel = avx2)"),
            Decision::Probed { measured, avx2 } => write!(
                f,
                "{} (RSA-2048 CRT exponentiation pairs per second: ADX cleared (AVX2 RSAZ) \
                 {:.0}, the library's choice {:.0}; rsa_kernel = library or avx2 fixes it)",
                if *avx2 {
                    "AVX2 RSAZ"
                } else {
                    "the library's choice"
                },
                measured.avx2,
                measured.library
            ),
            Decision::ProbeFailed(why) => write!(f, "the library's choice (probe failed: {why})"),
            Decision::Chosen => write!(f, "AVX2 RSAZ ({CAPS_ENV}={AVX2_CAPS}, as chosen above)"),
            Decision::ExecFailed(why) => {
                write!(f, "the library's choice (could not start again: {why})")
            }
        }
    }
}

/// The rule: AVX2 only with a clear lead.
pub fn prefer_avx2(m: Measured) -> bool {
    m.avx2.is_finite() && m.library.is_finite() && m.library > 0.0 && m.avx2 >= m.library * MIN_GAIN
}

/// Why the ADX bit cannot change how this CPU signs RSA-2048, or `None` if it can. aws-lc
/// picks MULX/ADX only when AVX2, ADX, BMI1 and BMI2 are all there (without them it already
/// takes AVX2, or has nothing better); and with AVX-512 IFMA (plus F, DQ, BW and VL, as
/// aws-lc requires) it takes its IFMA kernel for both CRT halves at once, ADX or not — a
/// probe would only measure noise there.
pub fn no_choice_on_this_cpu() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx2") && has!("adx") && has!("bmi1") && has!("bmi2")) {
            return Some("no AVX2/ADX choice on this CPU");
        }
        if has!("avx512ifma")
            && has!("avx512f")
            && has!("avx512dq")
            && has!("avx512bw")
            && has!("avx512vl")
        {
            return Some("AVX-512 IFMA: the kernel does not depend on ADX");
        }
        None
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Some("not x86-64")
    }
}

/// For an AVX2 decision, replaces this process with itself under the AVX2 mask: on success
/// it does not return, and the new image's [`decide`] returns [`Decision::Chosen`]. Any
/// other decision is returned as it is.
///
/// `serve` calls it before it binds, opens or starts anything (an exec would drop it all);
/// `exe` is this binary.
pub fn apply(decision: Decision, exe: &Path) -> Decision {
    if !matches!(
        decision,
        Decision::Avx2Forced | Decision::Probed { avx2: true, .. }
    ) {
        return decision;
    }
    log::info!(
        "RSA signing kernel: {decision}; starting again with {CAPS_ENV}={AVX2_CAPS}, which \
         aws-lc reads only as the program starts"
    );
    use std::os::unix::process::CommandExt;
    let error = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CAPS_ENV, AVX2_CAPS)
        .env(CHOSEN_ENV, "avx2")
        .exec();
    Decision::ExecFailed(error.to_string())
}

/// Which kernel to sign with. `new_key_alg` is the algorithm of the key `serve` creates if
/// there is no active one; `threads` how many sign at once (the HTTP workers); `exe` is this
/// binary, which the probes run.
pub fn decide(
    setting: RsaKernel,
    keys: &KeyStore,
    new_key_alg: SigningAlg,
    threads: usize,
    exe: &Path,
) -> Decision {
    if std::env::var_os(CHOSEN_ENV).is_some() {
        return Decision::Chosen;
    }
    if let Some(caps) = std::env::var_os(CAPS_ENV) {
        return Decision::OperatorCaps(caps.to_string_lossy().into_owned());
    }
    if setting == RsaKernel::Library {
        return Decision::Library;
    }
    // The key `serve` will sign with: the active one, or the one it is about to create.
    let alg = match keys.active() {
        Ok(Some(key)) => SigningAlg::parse(&key.alg),
        Ok(None) => Some(new_key_alg),
        Err(e) => return Decision::ProbeFailed(e.to_string()),
    };
    if alg != Some(SigningAlg::Rs256) {
        return Decision::NotApplicable("the signing key is not RSA");
    }
    if let Some(why) = no_choice_on_this_cpu() {
        return Decision::NotApplicable(why);
    }
    if setting == RsaKernel::Avx2 {
        return Decision::Avx2Forced;
    }
    match probe(exe, threads) {
        Ok(measured) => Decision::Probed {
            measured,
            avx2: prefer_avx2(measured),
        },
        Err(why) => Decision::ProbeFailed(why),
    }
}

/// Runs the probes one after the other, each on every core at once (as the server's workers
/// sign), and reads their rates. Side by side they would share cores, and two vCPUs that are
/// one core's hyperthreads favour whichever kernel uses the execution units the other does not.
fn probe(exe: &Path, threads: usize) -> Result<Measured, String> {
    let spawn = |caps: Option<&str>| {
        let mut cmd = Command::new(exe);
        cmd.args([
            "__rsa-kernel-probe",
            "--millis",
            &PROBE_MILLIS.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .env_remove("WVS_AUTH_CONFIG")
        .env_remove(CAPS_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(caps) = caps {
            cmd.env(CAPS_ENV, caps);
        }
        cmd.spawn()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))
    };
    let deadline = Instant::now() + PROBE_DEADLINE;
    let library = reap(spawn(None)?, deadline)?;
    let avx2 = reap(spawn(Some(AVX2_CAPS))?, deadline)?;
    Ok(Measured { library, avx2 })
}

/// Waits for one probe until `deadline` (then kills it) and parses its one line.
fn reap(mut child: std::process::Child, deadline: Instant) -> Result<f64, String> {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                // Best effort: the child is ours and short-lived.
                let _ = child.kill();
                let _ = child.wait();
                return Err("probe did not finish in time".into());
            }
            Err(e) => return Err(format!("probe: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("probe: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "probe exited with {}: {}",
            out.status,
            stderr.trim()
        ));
    }
    parse_rate(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "probe printed no rate".to_string())
}

/// Reads `modexp_per_sec=N` from a probe's output.
pub fn parse_rate(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(RATE_PREFIX))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
}

/// The probe itself (`wvs-auth __rsa-kernel-probe`): times pairs of 1024-bit constant-time
/// modular exponentiations — the two CRT halves of an RSA-2048 signature, nearly all of its
/// cost and all of the difference between the kernels — for `millis` on `threads` threads at
/// once and prints `modexp_per_sec=N`: the sum over threads of one over the median time of
/// one pair. Whatever `OPENSSL_ia32cap` its
/// parent gave it decides the kernel.
pub fn run_probe(millis: u64, threads: usize) -> Result<String, String> {
    let budget = Duration::from_millis(millis.max(1));
    let rates: Vec<Result<f64, String>> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..threads.clamp(1, MAX_PROBE_THREADS))
            .map(|_| scope.spawn(move || modexp::rate(budget)))
            .collect();
        running
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err("probe thread panicked".into()))
            })
            .collect()
    });
    let mut total = 0.0;
    for rate in rates {
        total += rate?;
    }
    Ok(format!("{RATE_PREFIX}{total:.1}"))
}

/// More probe threads than this measure nothing new and only delay startup.
const MAX_PROBE_THREADS: usize = 16;

const RATE_PREFIX: &str = "modexp_per_sec=";

mod modexp {
    //! The one place wvs-auth calls aws-lc's C API directly: aws-lc-rs exposes RSA only
    //! whole (with blinding, hence the RNG and its slow first use), not the exponentiation.

    use std::ptr;
    use std::time::{Duration, Instant};

    use aws_lc_sys as sys;

    /// One CRT half: result, base, exponent, modulus and its Montgomery context.
    struct Half {
        nums: [*mut sys::BIGNUM; 4],
        mont: *mut sys::BN_MONT_CTX,
    }

    /// Owns the aws-lc objects of one measurement and frees them on every path.
    struct Operands {
        ctx: *mut sys::BN_CTX,
        halves: [Half; 2],
    }

    impl Drop for Operands {
        fn drop(&mut self) {
            // SAFETY: each pointer is null or owned by this struct alone; the free functions
            // accept null.
            unsafe {
                for half in &self.halves {
                    sys::BN_MONT_CTX_free(half.mont);
                    for n in half.nums {
                        sys::BN_free(n);
                    }
                }
                sys::BN_CTX_free(self.ctx);
            }
        }
    }

    /// 128 pseudo-random bytes (xorshift64*): the values do not matter to constant-time code,
    /// only the widths, which the callers fix.
    fn bytes(seed: u64) -> [u8; 128] {
        let mut x = seed;
        let mut out = [0u8; 128];
        for chunk in out.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            chunk.copy_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes());
        }
        out
    }

    /// A 1024-bit odd modulus, a full-width 1024-bit exponent and a base below the modulus
    /// but still 16 words wide: the shape aws-lc hands its kernels for RSA-2048's CRT
    /// halves (the IFMA kernel takes the pair only at exactly that shape).
    fn operands(seed: u64) -> [[u8; 128]; 3] {
        let mut modulus = bytes(seed);
        modulus[0] |= 0xc0;
        modulus[127] |= 1;
        let mut exponent = bytes(seed ^ 0xd1b5_4a32_d192_ed03);
        exponent[0] |= 0x80;
        let mut base = bytes(seed ^ 0x8cb9_2ba7_2f3d_8dd7);
        base[0] = (base[0] & 0x3f) | 0x20;
        [base, exponent, modulus]
    }

    pub fn rate(budget: Duration) -> Result<f64, String> {
        let values = [
            operands(0x9e37_79b9_7f4a_7c15),
            operands(0x3c6e_f372_fe94_f82a),
        ];
        let empty = || Half {
            nums: [ptr::null_mut(); 4],
            mont: ptr::null_mut(),
        };
        let mut ops = Operands {
            ctx: ptr::null_mut(),
            halves: [empty(), empty()],
        };
        // SAFETY: plain aws-lc calls on objects created here; every pointer is checked for
        // null before use and freed by `Operands::drop`. The byte slices outlive the calls.
        unsafe {
            ops.ctx = sys::BN_CTX_new();
            if ops.ctx.is_null() {
                return Err("aws-lc could not allocate".into());
            }
            for (half, [base, exponent, modulus]) in ops.halves.iter_mut().zip(&values) {
                half.nums[0] = sys::BN_new();
                for (slot, value) in [(1, base), (2, exponent), (3, modulus)] {
                    half.nums[slot] = sys::BN_bin2bn(value.as_ptr(), value.len(), ptr::null_mut());
                }
                if half.nums.iter().any(|n| n.is_null()) {
                    return Err("aws-lc could not allocate".into());
                }
                half.mont = sys::BN_MONT_CTX_new_consttime(half.nums[3], ops.ctx);
                if half.mont.is_null() {
                    return Err("aws-lc could not set up Montgomery arithmetic".into());
                }
            }
            // Both halves in one call, as aws-lc's RSA signs: it runs them side by side in
            // the AVX-512 IFMA kernel where the CPU has one (whatever the ADX bit says), and
            // one after the other in the MULX/ADX or AVX2 kernel otherwise.
            let once = |ops: &Operands| {
                let [p, q] = &ops.halves;
                sys::BN_mod_exp_mont_consttime_x2(
                    p.nums[0], p.nums[1], p.nums[2], p.nums[3], p.mont, q.nums[0], q.nums[1],
                    q.nums[2], q.nums[3], q.mont, ops.ctx,
                ) == 1
            };
            if !once(&ops) {
                return Err("aws-lc modular exponentiation failed".into());
            }
            // Each pair timed alone; the median ignores the ones the machine interrupted,
            // which a total over the whole budget would not.
            let started = Instant::now();
            let mut times = Vec::with_capacity(256);
            while started.elapsed() < budget || times.len() < 5 {
                let t = Instant::now();
                if !once(&ops) {
                    return Err("aws-lc modular exponentiation failed".into());
                }
                times.push(t.elapsed());
            }
            times.sort_unstable();
            let median = times[times.len() / 2].as_secs_f64();
            if median > 0.0 {
                Ok(1.0 / median)
            } else {
                Err("timer too coarse".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx2_needs_a_clear_lead() {
        let m = |library, avx2| Measured { library, avx2 };
        assert!(prefer_avx2(m(1000.0, 1200.0)));
        assert!(prefer_avx2(m(1000.0, 1050.0)));
        assert!(!prefer_avx2(m(1000.0, 1040.0)));
        assert!(!prefer_avx2(m(1200.0, 1000.0)));
        assert!(!prefer_avx2(m(0.0, 1000.0)));
        assert!(!prefer_avx2(m(f64::NAN, 1000.0)));
        assert!(!prefer_avx2(m(1000.0, f64::INFINITY)));
    }

    #[test]
    fn probe_output_is_read_strictly() {
        assert_eq!(parse_rate("modexp_per_sec=2133.5\n"), Some(2133.5));
        assert_eq!(parse_rate("warming up\nmodexp_per_sec=10\n"), Some(10.0));
        assert_eq!(parse_rate("modexp_per_sec=abc"), None);
        assert_eq!(parse_rate("modexp_per_sec=-3"), None);
        assert_eq!(parse_rate("modexp_per_sec=inf"), None);
        assert_eq!(parse_rate(""), None);
    }

    #[test]
    fn the_mask_clears_adx_only() {
        // Second field: leaf 7 EBX/ECX; ADX is EBX bit 19.
        let (_, leaf7) = AVX2_CAPS.split_once(':').expect("two fields");
        let bits = u64::from_str_radix(leaf7.trim_start_matches("~0x"), 16).expect("hex");
        assert_eq!(bits, 1 << 19);
    }

    #[test]
    fn settings_read_from_toml_in_lowercase() {
        #[derive(Deserialize)]
        struct S {
            k: RsaKernel,
        }
        let s: S = toml::from_str("k = \"avx2\"").expect("toml");
        assert_eq!(s.k, RsaKernel::Avx2);
        assert!(toml::from_str::<S>("k = \"fast\"").is_err());
    }
}
