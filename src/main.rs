// The API's hot path allocates per row and per header; mimalloc's thread-local free lists
// make those allocations cheaper than glibc's arenas (see BENCHMARKS.md, HTTP API).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    boltcall::cli::main()
}
