fn main() -> std::process::ExitCode {
    boltcall::cli::main()
}
