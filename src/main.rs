// The API's hot path allocates per row and per header, in Rust and in SQLite's C code alike;
// mimalloc (whose `override` feature also replaces `malloc` for the C code) makes those
// allocations and their cross-thread frees far cheaper than glibc's arenas (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    boltcall::install_crypto_provider();
    boltcall::cli::main()
}
