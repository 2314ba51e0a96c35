fn main() -> std::process::ExitCode {
    wvs_auth::cli::run()
}
