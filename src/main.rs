fn main() -> std::process::ExitCode {
    wvs_auth::blocking::return_large_allocations();
    wvs_auth::cli::run()
}
